package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestAPIKeyOnOneConnection: a connection remembers the API key it last
// presented, but a revoked key stops working on it at once, and another
// key, or a wrong one of the same length, is checked afresh.
func TestAPIKeyOnOneConnection(t *testing.T) {
	serveOn, newConn := authAPI(t)
	setup := newConn()
	serve := func(tok, method, path, body string) (int, string) { return serveOn(setup, tok, method, path, body) }
	serve(token, "POST", "/models", authModels)
	serve(token, "PUT", "/digitaltwins/root", `{"$metadata":{"$model":"dtmi:t:Building;1"}}`)
	newKey := func() (id, key string) {
		c, body := serve(token, "POST", "/apikeys", `{}`)
		if c != http.StatusCreated {
			t.Fatalf("POST /apikeys: %d %s", c, body)
		}
		var k struct{ ID, Key, Principal string }
		json.Unmarshal([]byte(body), &k)
		if c, body := serve(token, "POST", "/grants", `{"principal":"`+k.Principal+`","role":"reader","scope":{"kind":"instance"}}`); c != http.StatusCreated {
			t.Fatalf("POST /grants: %d %s", c, body)
		}
		return k.ID, k.Key
	}
	id1, key1 := newKey()
	_, key2 := newKey()
	conn := newConn()
	get := func(tok string, want int) {
		t.Helper()
		if c, body := serveOn(conn, tok, "GET", "/digitaltwins/root", ""); c != want {
			t.Fatalf("GET with %.12s…: %d %s, want %d", tok, c, body, want)
		}
	}
	get(key1, 200)
	get(key1, 200)
	wrong := []byte(key1)
	wrong[len(wrong)-1] ^= 1
	get(string(wrong), 401)
	get(key2, 200)
	get(key1, 200)
	if c, body := serve(token, "DELETE", "/apikeys/"+id1, ""); c != http.StatusNoContent {
		t.Fatalf("DELETE /apikeys: %d %s", c, body)
	}
	get(key1, 401)
	get(key2, 200)
}
