package node_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/twinlog/twinlog/engine/authn"
	"github.com/twinlog/twinlog/engine/node"
)

// TestGrantsSurviveRestart grants a subtree through the API, restarts the
// node from a graph snapshot plus a log tail, and expects the grant, its
// subtree and the API keys to be as before.
func TestGrantsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	secret := []byte("0123456789abcdef0123456789abcdef")
	cfg := func() node.Config {
		return node.Config{DataDir: dir, Token: "admin-t", JWTAudience: "twinlog",
			JWTIssuers: []*authn.Issuer{{Issuer: "dev", HS256Secret: secret}}}
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "dev", "sub": "alice", "aud": "twinlog",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	n, stop := start(t, cfg())
	c := http.DefaultClient
	must := func(method, path, token, body string, want int) string {
		t.Helper()
		st, b := do(t, c, method, n.URL()+path, token, body)
		if st != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, st, want, b)
		}
		return b
	}
	must("POST", "/models", "admin-t", `[{"@context":"dtmi:dtdl:context;3","@id":"dtmi:t:S;1","@type":"Interface","contents":[{"@type":"Relationship","name":"contains"}]}]`, 201)
	for _, id := range []string{"B1", "B2", "R1"} {
		must("PUT", "/digitaltwins/"+id, "admin-t", `{"$metadata":{"$model":"dtmi:t:S;1"}}`, 200)
	}
	must("PUT", "/digitaltwins/B1/relationships/c", "admin-t", `{"$targetId":"R1","$relationshipName":"contains"}`, 200)
	must("POST", "/grants", "admin-t", `{"principal":"user:alice","role":"reader","scope":{"kind":"subtree","root":"B1"}}`, 201)
	must("GET", "/digitaltwins/R1", tok, "", 200)
	must("GET", "/digitaltwins/B2", tok, "", 404)
	if _, err := n.Snapshotter().Take(); err != nil {
		t.Fatal(err)
	}
	// After the snapshot: R1 moves to B2; a second grant.
	must("DELETE", "/digitaltwins/B1/relationships/c", "admin-t", "", 204)
	must("PUT", "/digitaltwins/B2/relationships/c", "admin-t", `{"$targetId":"R1","$relationshipName":"contains"}`, 200)
	must("POST", "/grants", "admin-t", `{"principal":"user:alice","role":"writer","scope":{"kind":"twins","twins":["B2"]}}`, 201)
	stop()
	n.Close()

	n, stop = start(t, cfg())
	defer func() { stop(); n.Close() }()
	must("GET", "/digitaltwins/B1", tok, "", 200)
	must("GET", "/digitaltwins/R1", tok, "", 404) // moved out of B1's subtree before the restart
	must("PATCH", "/digitaltwins/B2", tok, `[]`, 204)
	if b := must("GET", "/grants", "admin-t", "", 200); len(b) < 10 {
		t.Fatalf("grants %s", b)
	}
	if b := must("GET", fmt.Sprintf("/audit?principal=%s", "user:alice"), "admin-t", "", 200); b == "" {
		t.Fatal("no audit")
	}
}
