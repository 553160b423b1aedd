package dtdl

import (
	"strconv"
	"strings"
)

// DTMI is a parsed Digital Twin Model Identifier, such as
// "dtmi:com:example:Thermostat;1" or, in DTDL v3, "dtmi:com:example:Room;2.1".
type DTMI struct {
	// Text is the identifier exactly as given.
	Text string
	// Labels are the path segments after "dtmi:".
	Labels []string
	// MajorVersion is the version before the dot; 0 when there is none.
	MajorVersion int
	// MinorVersion is the version after the dot; 0 when there is none.
	MinorVersion int
	// Fragment is the "#..." suffix, including the '#', or "".
	Fragment string
	// Versionless is the identifier without its version (the fragment kept).
	Versionless string
	// IsReserved reports a segment or fragment starting with an underscore,
	// the form used for identifiers the parser generates.
	IsReserved bool
}

// CompleteVersion returns the version as a number: major + minor/10^6.
func (d DTMI) CompleteVersion() float64 {
	return float64(d.MajorVersion) + float64(d.MinorVersion)/1e6
}

// ParseDTMI parses the general DTMI syntax: segments of letters, digits and
// underscores (not starting with a digit, not ending with an underscore), an
// optional ";major" or ";major.minor" version and an optional fragment. It
// reports whether text is a DTMI.
func ParseDTMI(text string) (DTMI, bool) {
	d := DTMI{Text: text}
	rest, ok := strings.CutPrefix(text, "dtmi:")
	if !ok {
		return d, false
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		d.Fragment = rest[i:]
		rest = rest[:i]
		if len(d.Fragment) > 1 {
			if !validSegment(d.Fragment[1:], true) {
				return d, false
			}
			if d.Fragment[1] == '_' {
				d.IsReserved = true
			}
		}
	}
	path := rest
	if i := strings.IndexByte(rest, ';'); i >= 0 {
		path = rest[:i]
		major, minor, ok := parseVersion(rest[i+1:])
		if !ok {
			return d, false
		}
		d.MajorVersion, d.MinorVersion = major, minor
	}
	if path == "" {
		return d, false
	}
	for seg := range strings.SplitSeq(path, ":") {
		if !validSegment(seg, true) {
			return d, false
		}
		if seg[0] == '_' {
			d.IsReserved = true
		}
		d.Labels = append(d.Labels, seg)
	}
	d.Versionless = "dtmi:" + path + d.Fragment
	return d, true
}

// validSegment reports whether s is a DTMI path segment. User segments must
// start with a letter; reserved ones (allowUnderscore) may start with '_'.
func validSegment(s string, allowUnderscore bool) bool {
	if s == "" {
		return false
	}
	c := s[0]
	if !isLetter(c) && !(allowUnderscore && c == '_') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return s[len(s)-1] != '_'
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// parseVersion parses "major" or "major.minor": major 1..999999999, minor
// 1..999999, neither with a leading zero.
func parseVersion(v string) (major, minor int, ok bool) {
	ms, ns, hasMinor := strings.Cut(v, ".")
	if major, ok = parseVersionNumber(ms, 9); !ok {
		return 0, 0, false
	}
	if hasMinor {
		if minor, ok = parseVersionNumber(ns, 6); !ok {
			return 0, 0, false
		}
	}
	return major, minor, true
}

func parseVersionNumber(s string, maxDigits int) (int, bool) {
	if s == "" || len(s) > maxDigits || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// validUserDTMI reports whether id is a DTMI a model author may define or
// reference in the given DTDL version: v2 requires ";major"; v3 allows no
// version, ";major" or ";major.minor". Segments must start with a letter;
// no fragment.
// maxDTMILength is the longest identifier DTDL accepts.
const maxDTMILength = 2048

func validUserDTMI(id string, version int) bool {
	rest, ok := strings.CutPrefix(id, "dtmi:")
	if !ok || len(id) > maxDTMILength {
		return false
	}
	path, ver, hasVer := strings.Cut(rest, ";")
	if hasVer {
		if version == 2 {
			if _, ok := parseVersionNumber(ver, 9); !ok {
				return false
			}
		} else if _, _, ok := parseVersion(ver); !ok {
			return false
		}
	} else if version == 2 {
		return false
	}
	if path == "" {
		return false
	}
	for seg := range strings.SplitSeq(path, ":") {
		if !validSegment(seg, false) {
			return false
		}
	}
	return true
}

// isReservedDTMI reports whether id uses a prefix reserved for the language.
func isReservedDTMI(id string) bool {
	return strings.HasPrefix(id, "dtmi:dtdl:") || strings.HasPrefix(id, "dtmi:standard:")
}
