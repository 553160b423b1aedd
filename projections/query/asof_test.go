package query

import (
	"testing"
	"time"
)

func TestParseAsOf(t *testing.T) {
	tests := []struct {
		name, text string
		pos        uint64
		tm         string
		err        bool
	}{
		{"none", "SELECT * FROM DIGITALTWINS", 0, "", false},
		{"position", "SELECT * FROM DIGITALTWINS AS OF 42", 42, "", false},
		{"time", "SELECT * FROM DIGITALTWINS T WHERE T.a = 1 ORDER BY T.a AS OF '2026-11-24T09:26:00Z'", 0, "2026-11-24T09:26:00Z", false},
		{"lower case", "select * from digitaltwins as of 7", 7, "", false},
		{"after match", "SELECT r FROM DIGITALTWINS MATCH (f)-[:contains]->(r) AS OF 3", 3, "", false},
		{"alias named of is not the clause", "SELECT T.x AS of FROM DIGITALTWINS T", 0, "", false},
		{"bad time", "SELECT * FROM DIGITALTWINS AS OF 'yesterday'", 0, "", true},
		{"fraction", "SELECT * FROM DIGITALTWINS AS OF 1.5", 0, "", true},
		{"zero", "SELECT * FROM DIGITALTWINS AS OF 0", 0, "", true},
		{"missing operand", "SELECT * FROM DIGITALTWINS AS OF", 0, "", true},
		{"trailing", "SELECT * FROM DIGITALTWINS AS OF 5 WHERE x = 1", 0, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Parse(tc.text)
			if tc.err {
				if err == nil {
					t.Fatalf("no error, AsOf %+v", st.AsOf)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.pos == 0 && tc.tm == "":
				if st.AsOf != nil {
					t.Fatalf("AsOf %+v, want none", st.AsOf)
				}
			case tc.pos != 0:
				if st.AsOf == nil || st.AsOf.Position != tc.pos {
					t.Fatalf("AsOf %+v, want position %d", st.AsOf, tc.pos)
				}
			default:
				want, _ := time.Parse(time.RFC3339, tc.tm)
				if st.AsOf == nil || !st.AsOf.Time.Equal(want) {
					t.Fatalf("AsOf %+v, want %s", st.AsOf, tc.tm)
				}
			}
		})
	}
}
