package jsonstr

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strings"
	"testing"
	"unicode/utf8"
)

// appendBytewise encodes one byte or rune at a time: the reference Append
// must match byte for byte.
func appendBytewise(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && w == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			dst = append(dst, s[i:i+w]...)
		}
		i += w
	}
	return append(dst, '"')
}

func TestAppend(t *testing.T) {
	for s, want := range map[string]string{
		"":                   `""`,
		"room-1":             `"room-1"`,
		`a"b\c`:              `"a\"b\\c"`,
		"l1\nl2\r\t\x00\x1f": `"l1\nl2\r\t\u0000\u001f"`,
		"<&>\x7f":            "\"<&>\x7f\"",
		"héllo\u2028":        `"héllo\u2028"`,
		"bad\xffbyte":        `"bad\ufffdbyte"`,
	} {
		if got := string(Append(nil, s)); got != want {
			t.Errorf("Append(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "room-0001", `a"b\c`, "tab\there", "\x00\x1f\x7f", "héllo wörld", "\xff\xfe",
		"\u2028\u2029", strings.Repeat("plain ", 9) + "\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Append([]byte("x"), s)
		if want := appendBytewise([]byte("x"), s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
		// It decodes to what encoding/json's own encoding decodes to.
		var a, b string
		if err := json.Unmarshal(got[1:], &a); err != nil {
			t.Fatalf("%q: %s is not a JSON string: %v", s, got[1:], err)
		}
		ref, _ := json.Marshal(s)
		if err := json.Unmarshal(ref, &b); err != nil || a != b {
			t.Fatalf("%q: decodes to %q, encoding/json's to %q", s, a, b)
		}
	})
}

func TestSpecial8(t *testing.T) {
	// ref returns the index of the first byte to look at, 8 when none.
	ref := func(b []byte) int {
		for i, c := range b {
			if c == '"' || c == '\\' || c < 0x20 || c >= 0x80 {
				return i
			}
		}
		return 8
	}
	first := func(x uint64) int { return bits.TrailingZeros64(Special8(x)) / 8 }
	for _, bg := range []byte{'a', ' ', '!', '#', '[', ']', 0x7f, 0x21, 0x5b, 0x5d} {
		for pos := range 8 {
			for v := range 256 {
				b := bytes.Repeat([]byte{bg}, 8)
				b[pos] = byte(v)
				if got, want := first(binary.LittleEndian.Uint64(b)), ref(b); got != want {
					t.Fatalf("Special8(%q) flags byte %d first, want %d", b, got, want)
				}
				b[(pos+3)%8] = 0x20 // a space beside a control character or a quote
				if got, want := first(binary.LittleEndian.Uint64(b)), ref(b); got != want {
					t.Fatalf("Special8(%q) flags byte %d first, want %d", b, got, want)
				}
			}
		}
	}
}
