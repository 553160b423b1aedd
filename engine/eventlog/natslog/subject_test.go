package natslog

import (
	"errors"
	"strings"
	"testing"
)

func TestEncodeToken(t *testing.T) {
	tests := []struct {
		name, stream, want string
	}{
		{"plain", "models", "models"},
		{"slash", "twin/a", "twin_2Fa"},
		{"dot", "twin/a.b", "twin_2Fa_2Eb"},
		{"underscore", "twin/a_b", "twin_2Fa_5Fb"},
		{"space", "a b", "a_20b"},
		{"star", "*", "_2A"},
		{"gt", ">", "_3E"},
		{"dollar", "$SYS", "_24SYS"},
		{"percent", "a%2Eb", "a_252Eb"},
		{"utf8", "ä", "_C3_A4"},
		{"empty", "", "_"},
		{"case", "A.B", "A_2EB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := EncodeToken(tc.stream)
			if got != tc.want {
				t.Fatalf("EncodeToken(%q) = %q, want %q", tc.stream, got, tc.want)
			}
			back, err := DecodeToken(got)
			if err != nil || back != tc.stream {
				t.Fatalf("DecodeToken(%q) = %q, %v; want %q", got, back, err, tc.stream)
			}
		})
	}
}

func TestEncodeTokenLong(t *testing.T) {
	long := strings.Repeat("x", MaxTokenLen+1)
	tok := EncodeToken(long)
	if !validToken(tok) || len(tok) > MaxTokenLen || !strings.HasPrefix(tok, "_H") {
		t.Fatalf("EncodeToken(long) = %q", tok)
	}
	if _, err := DecodeToken(tok); !errors.Is(err, ErrHashedToken) {
		t.Fatalf("DecodeToken(hashed) err = %v, want ErrHashedToken", err)
	}
	if other := EncodeToken(long + "y"); other == tok {
		t.Fatal("two long names share a token")
	}
	// The longest name that still escapes reversibly.
	edge := strings.Repeat("/", MaxTokenLen/3)
	if back, err := DecodeToken(EncodeToken(edge)); err != nil || back != edge {
		t.Fatalf("edge round trip = %q, %v", back, err)
	}
}

func TestDecodeTokenRejects(t *testing.T) {
	for _, tok := range []string{"", "a.b", "_", "_2", "_2g", "_61", "a b", "_zz", "x_"} {
		back, err := DecodeToken(tok)
		if tok == "_" {
			if err != nil || back != "" {
				t.Fatalf("DecodeToken(%q) = %q, %v; want empty name", tok, back, err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("DecodeToken(%q) = %q, want an error", tok, back)
		}
	}
}

// FuzzSubjectToken checks that every stream name maps to one valid subject
// token that decodes back to it (or, for a long name, is the hashed form) and
// that decoding accepts only what encoding produces.
func FuzzSubjectToken(f *testing.F) {
	for _, s := range []string{"", "twin/a.b", "twin/a_b", "twin/a b", "twin/*", "twin/>", "twin/ä-ü", "models",
		"twin/..", "twin/$SYS", "twin/a%2Eb", "_", "_H", "_2E", "\x00\xff", strings.Repeat("é", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := EncodeToken(s)
		if !validToken(tok) || len(tok) > MaxTokenLen+3 {
			t.Fatalf("EncodeToken(%q) = %q: not a valid subject token", s, tok)
		}
		back, err := DecodeToken(tok)
		switch {
		case errors.Is(err, ErrHashedToken):
			if len(s) <= MaxTokenLen/3 {
				t.Fatalf("short name %q hashed to %q", s, tok)
			}
		case err != nil:
			t.Fatalf("DecodeToken(EncodeToken(%q) = %q): %v", s, tok, err)
		case back != s:
			t.Fatalf("DecodeToken(EncodeToken(%q)) = %q", s, back)
		}
		// Used as a token, s decodes only if it is canonical.
		if d, err := DecodeToken(s); err == nil && EncodeToken(d) != s {
			t.Fatalf("DecodeToken(%q) = %q, which encodes to %q", s, d, EncodeToken(d))
		}
	})
}
