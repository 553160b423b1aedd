package query

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Pos is a position in the query text, 1-based, columns counted in
// characters.
type Pos struct {
	Line, Col int
}

type tokKind uint8

const (
	tEOF     tokKind = iota
	tIdent           // name or keyword; keywords are recognized by the parser
	tEscaped         // [[name]]
	tSys             // $dtId, $metadata, ...
	tParam           // @name
	tString          // 'text' (value unescaped)
	tNumber          // 12, 1.5, 1e3
	tPunct           // ( ) [ ] , . * = != <> < > <= >= - + / % | : .. ;
)

type token struct {
	kind tokKind
	text string // identifier, unescaped string, number text or punctuation
	pos  Pos
	num  float64
	// ord numbers the query's string literals from 1, in text order
	// (tString only): the literal's slot when a cached plan is reused
	// for other values (see Cache).
	ord int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "the end of the query"
	case tString:
		return strconv.Quote(t.text)
	case tEscaped:
		return "[[" + t.text + "]]"
	case tParam:
		return "@" + t.text
	}
	return "'" + t.text + "'"
}

// isSpace reports whether r separates tokens: every Unicode white space
// (U+202F narrow no-break space included, as pasted from the ADT docs) and
// the zero-width space and byte-order mark.
func isSpace(r rune) bool {
	return unicode.IsSpace(r) || r == '\u200b' || r == '\ufeff' || r == '\u2060'
}

func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }
func isIdentPart(r rune) bool  { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// lex splits text into tokens. It stops at the first error.
func lex(text string) ([]token, error) {
	l := lexer{src: text, line: 1, col: 1}
	toks := make([]token, 0, 8+len(text)/6)
	strs := 0
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		if t.kind == tString {
			strs++
			t.ord = strs
		}
		toks = append(toks, t)
		if t.kind == tEOF {
			return toks, nil
		}
	}
}

type lexer struct {
	src       string
	off       int
	line, col int
}

func (l *lexer) peek() (rune, int) {
	if l.off >= len(l.src) {
		return -1, 0
	}
	return utf8.DecodeRuneInString(l.src[l.off:])
}

func (l *lexer) peekAt(n int) rune {
	off := l.off
	for i := 0; i < n; i++ {
		if off >= len(l.src) {
			return -1
		}
		_, w := utf8.DecodeRuneInString(l.src[off:])
		off += w
	}
	if off >= len(l.src) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(l.src[off:])
	return r
}

func (l *lexer) advance() rune {
	r, w := l.peek()
	if w == 0 {
		return -1
	}
	l.off += w
	if r == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
	return r
}

func (l *lexer) pos() Pos { return Pos{l.line, l.col} }

func (l *lexer) next() (token, error) {
	// Skip white space and comments.
	for {
		r, w := l.peek()
		switch {
		case w == 0:
			return token{kind: tEOF, pos: l.pos()}, nil
		case r == utf8.RuneError && w == 1:
			return token{}, syntaxError(l.pos(), "the query is not valid UTF-8")
		case isSpace(r):
			l.advance()
			continue
		case r == '-' && l.peekAt(1) == '-':
			for r, w := l.peek(); w > 0 && r != '\n'; r, w = l.peek() {
				l.advance()
			}
			continue
		case r == '/' && l.peekAt(1) == '*':
			start := l.pos()
			l.advance()
			l.advance()
			for {
				r, w := l.peek()
				if w == 0 {
					return token{}, syntaxError(start, "the comment '/*' is not closed with '*/'")
				}
				l.advance()
				if r == '*' && l.peekAt(0) == '/' {
					l.advance()
					break
				}
			}
			continue
		}
		break
	}
	start := l.pos()
	r, _ := l.peek()
	switch {
	case isIdentStart(r):
		b := l.off
		for r, w := l.peek(); w > 0 && isIdentPart(r); r, w = l.peek() {
			l.advance()
		}
		return token{kind: tIdent, text: l.src[b:l.off], pos: start}, nil
	case r == '$' || r == '@':
		l.advance()
		b := l.off
		for r, w := l.peek(); w > 0 && isIdentPart(r); r, w = l.peek() {
			l.advance()
		}
		if l.off == b {
			return token{}, syntaxError(start, "expected a name after '%c'", r)
		}
		if r == '@' {
			return token{kind: tParam, text: l.src[b:l.off], pos: start}, nil
		}
		return token{kind: tSys, text: "$" + l.src[b:l.off], pos: start}, nil
	case r >= '0' && r <= '9':
		return l.number(start)
	case r == '\'' || r == '"':
		return l.str(start, r)
	case r == '[' && l.peekAt(1) == '[':
		l.advance()
		l.advance()
		b := l.off
		for {
			r, w := l.peek()
			if w == 0 {
				return token{}, syntaxError(start, "the escaped name '[[' is not closed with ']]'")
			}
			if r == ']' && l.peekAt(1) == ']' {
				text := l.src[b:l.off]
				l.advance()
				l.advance()
				if text == "" {
					return token{}, syntaxError(start, "the escaped name '[[]]' is empty")
				}
				return token{kind: tEscaped, text: text, pos: start}, nil
			}
			if r == '\n' {
				return token{}, syntaxError(start, "the escaped name '[[' is not closed with ']]' on its line")
			}
			l.advance()
		}
	}
	l.advance()
	two := string(r) + string(l.peekAt(0))
	switch two {
	case "!=", "<>", "<=", ">=", "..":
		l.advance()
		if two == "<>" {
			two = "!="
		}
		return token{kind: tPunct, text: two, pos: start}, nil
	}
	if strings.ContainsRune("()[],.*=<>-+/%|:;", r) {
		return token{kind: tPunct, text: string(r), pos: start}, nil
	}
	if r == '!' {
		return token{}, syntaxError(start, "unexpected '!'; write NOT or !=")
	}
	return token{}, syntaxError(start, "unexpected character %q", r)
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

func (l *lexer) number(start Pos) (token, error) {
	b := l.off
	for isDigit(l.peekAt(0)) {
		l.advance()
	}
	// A '.' belongs to the number only when a digit follows ("1..3" is a
	// range).
	if l.peekAt(0) == '.' && isDigit(l.peekAt(1)) {
		l.advance()
		for isDigit(l.peekAt(0)) {
			l.advance()
		}
	}
	if r := l.peekAt(0); r == 'e' || r == 'E' {
		n := 1
		if s := l.peekAt(1); s == '+' || s == '-' {
			n = 2
		}
		if isDigit(l.peekAt(n)) {
			for i := 0; i < n; i++ {
				l.advance()
			}
			for isDigit(l.peekAt(0)) {
				l.advance()
			}
		}
	}
	text := l.src[b:l.off]
	if r := l.peekAt(0); isIdentStart(r) {
		b := l.off
		for r, w := l.peek(); w > 0 && isIdentPart(r); r, w = l.peek() {
			l.advance()
		}
		name := text + l.src[b:l.off]
		return token{}, syntaxError(start, "a name may not start with a digit: escape it as [[%s]]", name)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return token{}, syntaxError(start, "%q is not a number", text)
	}
	return token{kind: tNumber, text: text, pos: start, num: f}, nil
}

func (l *lexer) str(start Pos, quote rune) (token, error) {
	l.advance()
	// Most strings hold no escape and no line break: their text is a
	// slice of the query.
	if end := strings.IndexByte(l.src[l.off:], byte(quote)); end >= 0 {
		body := l.src[l.off : l.off+end]
		if strings.IndexByte(body, '\\') < 0 && strings.IndexByte(body, '\n') < 0 && utf8.ValidString(body) {
			l.off += end + 1
			l.col += utf8.RuneCountInString(body) + 1
			return token{kind: tString, text: body, pos: start}, nil
		}
	}
	var sb strings.Builder
	for {
		r, w := l.peek()
		if w == 0 {
			return token{}, syntaxError(start, "the string is not closed with %c", quote)
		}
		l.advance()
		switch r {
		case quote:
			return token{kind: tString, text: sb.String(), pos: start}, nil
		case '\\':
			e := l.advance()
			switch e {
			case '\'', '"', '\\', '/':
				sb.WriteRune(e)
			case 'n':
				sb.WriteByte('\n')
			case 't':
				sb.WriteByte('\t')
			case 'r':
				sb.WriteByte('\r')
			case 'b':
				sb.WriteByte('\b')
			case 'f':
				sb.WriteByte('\f')
			case 'u':
				var v rune
				for i := 0; i < 4; i++ {
					h := l.advance()
					d := strings.IndexRune("0123456789abcdef", unicode.ToLower(h))
					if d < 0 {
						return token{}, syntaxError(start, "\\u in a string needs four hex digits")
					}
					v = v*16 + rune(d)
				}
				sb.WriteRune(v)
			case -1:
				return token{}, syntaxError(start, "the string is not closed with %c", quote)
			default:
				return token{}, syntaxError(l.pos(), "unknown escape \\%c in a string; escape a quote as \\'", e)
			}
		default:
			sb.WriteRune(r)
		}
	}
}
