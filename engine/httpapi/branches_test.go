package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBranchReads reads a simulation's branch through the twin and query
// routes with ?branch=, under the same access control as the main graph,
// and diffs it against the main graph and another branch.
func TestBranchReads(t *testing.T) {
	e := newAuthEnv(t)
	create := func(events string) string {
		t.Helper()
		r := e.do(t, "admin", "POST", "/simulations", `{"events":`+events+`}`)
		mustStatus(t, r, 201)
		var c struct{ ID string }
		json.Unmarshal([]byte(r.body), &c)
		return c.ID
	}
	rename := func(id, name string) string {
		return `{"twinId":"` + id + `","patch":[{"op":"replace","path":"/name","value":"` + name + `"}]}`
	}
	sim := create("[" + rename("B2", "B2 branch") + "," + rename("R1", "R1 branch") + "," + rename("R2", "R2 branch") + "]")
	other := create("[" + rename("R1", "R1 other") + "]")

	name := func(who, path string) string {
		t.Helper()
		r := e.do(t, who, "GET", path, "")
		mustStatus(t, r, 200)
		var tw struct{ Name string }
		json.Unmarshal([]byte(r.body), &tw)
		return tw.Name
	}
	if got := name("admin", "/digitaltwins/R1?branch="+sim); got != "R1 branch" {
		t.Fatalf("branch R1 name %q", got)
	}
	if got := name("admin", "/digitaltwins/R1"); got != "R1" {
		t.Fatalf("main R1 name %q: the branch leaked", got)
	}
	// reader B1 reads B1's subtree (B1, R1), in the branch as in the main graph.
	if got := name("reader B1", "/digitaltwins/R1?branch="+sim); got != "R1 branch" {
		t.Fatalf("reader's branch R1 name %q", got)
	}
	mustStatus(t, e.do(t, "reader B1", "GET", "/digitaltwins/R2?branch="+sim, ""), 404)
	mustStatus(t, e.do(t, "stranger", "GET", "/digitaltwins/R1?branch="+sim, ""), 404)
	// R1's relationship to R2 is hidden from reader B1.
	if r := e.do(t, "reader B1", "GET", "/digitaltwins/R1/relationships?branch="+sim, ""); r.status != 200 || strings.Contains(r.body, "R2") {
		t.Fatalf("reader's branch relationships of R1: %d %s", r.status, r.body)
	}
	if r := e.do(t, "admin", "GET", "/digitaltwins/R1/relationships?branch="+sim, ""); r.status != 200 || !strings.Contains(r.body, `"$targetId":"R2"`) {
		t.Fatalf("admin's branch relationships of R1: %d %s", r.status, r.body)
	}
	mustStatus(t, e.do(t, "reader B1", "GET", "/digitaltwins/R1/relationships/n1?branch="+sim, ""), 404)
	if r := e.do(t, "admin", "GET", "/digitaltwins/R2/incomingrelationships?branch="+sim, ""); r.status != 200 || !strings.Contains(r.body, `"$sourceId":"R1"`) {
		t.Fatalf("admin's branch incoming relationships of R2: %d %s", r.status, r.body)
	}

	rows := func(who, path string) []string {
		t.Helper()
		r := e.do(t, who, "POST", path, `{"query":"SELECT T.name FROM DIGITALTWINS T"}`)
		mustStatus(t, r, 200)
		var res struct{ Value []struct{ Name string } }
		json.Unmarshal([]byte(r.body), &res)
		var out []string
		for _, v := range res.Value {
			out = append(out, v.Name)
		}
		return out
	}
	if got := strings.Join(rows("reader B1", "/query?branch="+sim), ","); got != "B1,R1 branch" {
		t.Fatalf("reader's branch query rows %q, want B1,R1 branch", got)
	}
	if got := strings.Join(rows("admin", "/query?branch="+sim), ","); got != "B1,B2 branch,R1 branch,R2 branch" {
		t.Fatalf("admin's branch query rows %q", got)
	}
	if got := strings.Join(rows("admin", "/query"), ","); got != "B1,B2,R1,R2" {
		t.Fatalf("main query rows %q", got)
	}

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown branch", "GET", "/digitaltwins/R1?branch=sim-99", "", 404, "SimulationNotFound"},
		{"empty branch", "GET", "/digitaltwins/R1?branch=", "", 400, "InvalidArgument"},
		{"branch and asOf", "GET", "/digitaltwins/R1?branch=" + sim + "&asOf=1", "", 400, "InvalidArgument"},
		{"write with branch", "PATCH", "/digitaltwins/R1?branch=" + sim, `[{"op":"replace","path":"/name","value":"x"}]`, 400, "InvalidArgument"},
		{"write with escaped branch", "PATCH", "/digitaltwins/R1?br%61nch=" + sim, `[{"op":"replace","path":"/name","value":"x"}]`, 400, "InvalidArgument"},
		{"escaped branch and asOf", "GET", "/digitaltwins/R1?%62ranch=" + sim + "&as%4Ff=1", "", 400, "InvalidArgument"},
		{"query unknown branch", "POST", "/query?branch=sim-99", `{"query":"SELECT * FROM DIGITALTWINS"}`, 404, "SimulationNotFound"},
		{"query branch AS OF", "POST", "/query?branch=" + sim, `{"query":"SELECT * FROM DIGITALTWINS","asOf":"1"}`, 400, "InvalidArgument"},
		{"diff unknown", "GET", "/simulations/sim-99/diff", "", 404, "SimulationNotFound"},
		{"diff against unknown", "GET", "/simulations/" + sim + "/diff?against=sim-99", "", 404, "SimulationNotFound"},
		{"diff against nothing", "GET", "/simulations/" + sim + "/diff?against=", "", 400, "InvalidArgument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "admin", tc.method, tc.path, tc.body)
			if r.status != tc.status || errCode(t, r) != tc.code {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
		})
	}
	if got := name("admin", "/digitaltwins/R1"); got != "R1" {
		t.Fatalf("main R1 name %q after refused writes", got)
	}

	diff := func(path string) []string {
		t.Helper()
		r := e.do(t, "admin", "GET", path, "")
		mustStatus(t, r, 200)
		var res struct {
			Value []struct{ Kind, What, TwinID, Name, A, B string }
		}
		json.Unmarshal([]byte(r.body), &res)
		var out []string
		for _, d := range res.Value {
			out = append(out, d.Kind+" "+d.What+" "+d.TwinID+"."+d.Name+": "+d.A+" -> "+d.B)
		}
		return out
	}
	want := []string{
		`changed property B2.name: "B2" -> "B2 branch"`,
		`changed property R1.name: "R1" -> "R1 branch"`,
		`changed property R2.name: "R2" -> "R2 branch"`,
	}
	if got := diff("/simulations/" + sim + "/diff"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("diff against main:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	want[1] = `changed property R1.name: "R1 other" -> "R1 branch"`
	if got := diff("/simulations/" + sim + "/diff?against=" + other); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("diff against %s:\n%s\nwant:\n%s", other, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	mustStatus(t, e.do(t, "reader B1", "GET", "/simulations/"+sim+"/diff", ""), 403)
}
