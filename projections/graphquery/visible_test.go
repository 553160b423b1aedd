package graphquery

import (
	"context"
	"testing"
)

// TestVisible checks that a visibility predicate hides twins and the
// relationships touching them from rows reached by scans, JOIN and MATCH,
// and from COUNT and TOP.
func TestVisible(t *testing.T) {
	a := newGraph(t, 10) // room-i -[next]-> room-(i-1)
	r := New(a.g, Options{})
	vis := func(id, model string) bool { return id <= "room-004" && model == roomModel }
	tests := []struct {
		name       string
		query      string
		all, shown string
	}{
		{"count", "SELECT COUNT() FROM DIGITALTWINS", `[{"COUNT":10}]`, `[{"COUNT":5}]`},
		{"count where", "SELECT COUNT() FROM DIGITALTWINS T WHERE T.temperature >= 63", `[{"COUNT":7}]`, `[{"COUNT":2}]`},
		{"top", "SELECT TOP(2) T.$dtId AS id FROM DIGITALTWINS T WHERE T.temperature >= 63", `[{"id":"room-003"},{"id":"room-004"}]`, `[{"id":"room-003"},{"id":"room-004"}]`},
		{"top beyond", "SELECT TOP(3) T.$dtId AS id FROM DIGITALTWINS T WHERE T.temperature >= 63", `[{"id":"room-003"},{"id":"room-004"},{"id":"room-005"}]`, `[{"id":"room-003"},{"id":"room-004"}]`},
		{"by id", "SELECT T.$dtId AS id FROM DIGITALTWINS T WHERE T.$dtId IN ['room-004', 'room-005']", `[{"id":"room-004"},{"id":"room-005"}]`, `[{"id":"room-004"}]`},
		{"join count", "SELECT COUNT() FROM DIGITALTWINS A JOIN B RELATED A.next", `[{"COUNT":9}]`, `[{"COUNT":4}]`},
		{"join edge", "SELECT B.$dtId AS b FROM DIGITALTWINS A JOIN B RELATED A.next WHERE A.$dtId = 'room-005'", `[{"b":"room-004"}]`, `[]`},
		{"match hops", "SELECT COUNT() FROM DIGITALTWINS MATCH (a)-[:next*2]->(b)", `[{"COUNT":8}]`, `[{"COUNT":3}]`},
		{"match through hidden", "SELECT b.$dtId AS b FROM DIGITALTWINS MATCH (a)-[*2]-(b) WHERE a.$dtId = 'room-004'", `[{"b":"room-002"},{"b":"room-006"}]`, `[{"b":"room-002"}]`},
		{"relationships", "SELECT COUNT() FROM RELATIONSHIPS", `[{"COUNT":9}]`, `[{"COUNT":4}]`},
		{"relationships by source", "SELECT R.$targetId AS t FROM RELATIONSHIPS R WHERE R.$sourceId = 'room-005'", `[{"t":"room-004"}]`, `[]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct {
				vis  func(string, string) bool
				want string
			}{{nil, tc.all}, {vis, tc.shown}} {
				res, err := r.Run(context.Background(), Request{Query: tc.query, Visible: c.vis})
				if err != nil {
					t.Fatal(err)
				}
				got := "["
				for i, row := range res.Rows {
					if i > 0 {
						got += ","
					}
					got += string(row)
				}
				got += "]"
				if got != c.want {
					t.Errorf("visible=%v: got %s, want %s", c.vis != nil, got, c.want)
				}
			}
		})
	}
}

// TestVisiblePaging checks that pages of a filtered query hold only
// visible rows and that the continuation keeps filtering.
func TestVisiblePaging(t *testing.T) {
	a := newGraph(t, 10)
	r := New(a.g, Options{})
	vis := func(id, _ string) bool { return id[len(id)-1]%2 == 0 }
	req := Request{Query: "SELECT T.$dtId AS id FROM DIGITALTWINS T", PageSize: 2, Visible: vis}
	var got []string
	for {
		res, err := r.Run(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range res.Rows {
			got = append(got, string(row))
		}
		if res.ContinuationToken == "" {
			break
		}
		req.ContinuationToken = res.ContinuationToken
	}
	if len(got) != 5 || got[4] != `{"id":"room-008"}` {
		t.Fatalf("rows %v, want the 5 even rooms", got)
	}
}
