package query

import (
	"math"
	"reflect"
	"slices"
	"strconv"

	"github.com/twinlog/twinlog/engine/jsonstr"
)

// undefined is the value of a property that is not set, and of operations
// on values of mismatched types. Comparisons with it are neither true nor
// false, so a WHERE clause drops the row; IS_DEFINED tells it apart.
type undefined struct{}

var missing any = undefined{}

func isMissing(v any) bool { _, ok := v.(undefined); return ok }

// truth maps a value to three-valued logic: 1 true, 0 false, -1 unknown.
func truth(v any) int {
	if b, ok := v.(bool); ok {
		if b {
			return 1
		}
		return 0
	}
	return -1
}

func boolOrMissing(t int) any {
	switch t {
	case 1:
		return true
	case 0:
		return false
	}
	return missing
}

// equal reports a = b: 1, 0, or -1 when the types differ or a side is
// undefined.
func equal(a, b any) int {
	switch x := a.(type) {
	case nil:
		if b == nil {
			return 1
		}
	case bool:
		if y, ok := b.(bool); ok {
			return b2i(x == y)
		}
	case float64:
		if y, ok := b.(float64); ok {
			return b2i(x == y)
		}
	case string:
		if y, ok := b.(string); ok {
			return b2i(x == y)
		}
	case []any:
		if y, ok := b.([]any); ok {
			return b2i(reflect.DeepEqual(x, y))
		}
	case map[string]any:
		if y, ok := b.(map[string]any); ok {
			return b2i(reflect.DeepEqual(x, y))
		}
	}
	return -1
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// order compares two numbers, two strings or two booleans; ok is false for
// any other pair.
func order(a, b any) (c int, ok bool) {
	switch x := a.(type) {
	case float64:
		if y, ok := b.(float64); ok {
			switch {
			case x < y:
				return -1, true
			case x > y:
				return 1, true
			}
			return 0, true
		}
	case string:
		if y, ok := b.(string); ok {
			switch {
			case x < y:
				return -1, true
			case x > y:
				return 1, true
			}
			return 0, true
		}
	case bool:
		if y, ok := b.(bool); ok {
			return b2i(x) - b2i(y), true
		}
	}
	return 0, false
}

// typeRank orders values of different types for ORDER BY, MIN and MAX:
// undefined, null, false/true, numbers, strings, arrays, objects, twins.
func typeRank(v any) int {
	switch v.(type) {
	case undefined:
		return 0
	case nil:
		return 1
	case bool:
		return 2
	case float64:
		return 3
	case string:
		return 4
	case []any:
		return 5
	case map[string]any:
		return 6
	}
	return 7
}

// sortCompare is a total order over values for ORDER BY.
func sortCompare(a, b any) int {
	ra, rb := typeRank(a), typeRank(b)
	if ra != rb {
		return ra - rb
	}
	if c, ok := order(a, b); ok {
		return c
	}
	return 0
}

// appendValue appends the JSON encoding of a value: objects with sorted
// keys, numbers in their shortest form, twins and relationships as their
// ADT JSON.
func appendValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, x)
	case float64:
		return appendNumber(dst, x)
	case string:
		return appendString(dst, x)
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendValue(dst, e)
		}
		return append(dst, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendValue(dst, x[k])
		}
		return append(dst, '}')
	case Twin:
		return x.AppendJSON(dst)
	case Relationship:
		return x.AppendJSON(dst)
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	}
	return append(dst, "null"...)
}

func appendNumber(dst []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(dst, "null"...)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.AppendInt(dst, int64(f), 10)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

func appendString(dst []byte, s string) []byte { return jsonstr.Append(dst, s) }
