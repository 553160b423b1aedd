package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authn"
	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/httpapi"
	"github.com/twinlog/twinlog/projections/twingraph"
)

func TestGrantsCommand(t *testing.T) {
	g := twingraph.New(twingraph.Options{})
	store := authz.New(authz.Options{})
	keys := authn.NewKeys()
	eng, err := engine.New(memlog.New(memlog.Options{}), engine.Options{}, g, store, keys)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	defer eng.Stop()
	api := httpapi.New(httpapi.Config{Engine: eng, Token: "tok"})
	api.RegisterAuth(&httpapi.Auth{Keys: keys, Grants: store, Graph: g})
	srv := httptest.NewServer(api)
	defer srv.Close()
	runGrants := func(args ...string) (string, error) {
		var out bytes.Buffer
		cmd := grantsCommand()
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append(args, "--server", srv.URL, "--token", "tok"))
		err := cmd.ExecuteContext(context.Background())
		return out.String(), err
	}
	out, err := runGrants("add", "user:alice", "reader", "--subtree", "B1", "--via", "contains,hasSensor")
	if err != nil {
		t.Fatalf("add: %v %s", err, out)
	}
	var added struct{ ID string }
	json.Unmarshal([]byte(out), &added)
	if _, err := runGrants("add", "user:bob", "writer", "--model", "dtmi:x;1", "--twins", "a"); err == nil {
		t.Fatal("two scopes accepted")
	}
	if _, err := runGrants("add", "bob", "writer"); err == nil || !strings.Contains(err.Error(), "principal") {
		t.Fatalf("bad principal: %v", err)
	}
	out, err = runGrants("list")
	if err != nil || !strings.Contains(out, "user:alice  reader  subtree B1 via contains,hasSensor  admin") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = runGrants("keys", "create", "gateway")
	if err != nil || !strings.Contains(out, `"key": "tlk_`) {
		t.Fatalf("keys create: %v %s", err, out)
	}
	var key struct{ ID string }
	json.Unmarshal([]byte(out), &key)
	if _, err := runGrants("keys", "revoke", key.ID); err != nil {
		t.Fatal(err)
	}
	out, err = runGrants("keys", "list")
	if err != nil || !strings.Contains(out, "gateway") || !strings.Contains(out, "true") {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	if _, err := runGrants("revoke", added.ID); err != nil {
		t.Fatal(err)
	}
	if out, _ := runGrants("list"); strings.Contains(out, "alice") {
		t.Fatalf("revoked grant listed:\n%s", out)
	}
}
