package dtdl

import (
	"slices"
	"testing"
)

func TestRemoveUpdatesDescendants(t *testing.T) {
	base := `{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Base;1","@type":"Interface"}`
	mid := `{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Mid;1","@type":"Interface","extends":"dtmi:ex:Base;1"}`
	leaf := `{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Leaf;1","@type":"Interface","extends":"dtmi:ex:Mid;1"}`
	r, _, err := NewRegistry(Options{}).Add([]Document{{Data: []byte(base)}, {Data: []byte(mid)}, {Data: []byte(leaf)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Descendants("dtmi:ex:Base;1"); len(got) != 2 {
		t.Fatalf("descendants of Base = %v, want Mid and Leaf", got)
	}
	r2, err := r.Remove("dtmi:ex:Leaf;1")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"dtmi:ex:Base;1", "dtmi:ex:Mid;1"} {
		if slices.Contains(r2.Descendants(a), "dtmi:ex:Leaf;1") {
			t.Fatalf("removed Leaf still a descendant of %s: %v", a, r2.Descendants(a))
		}
		if !slices.Contains(r.Descendants(a), "dtmi:ex:Leaf;1") {
			t.Fatalf("Remove changed the original registry's descendants of %s", a)
		}
	}
	if r2.IsOfModel("dtmi:ex:Leaf;1", "dtmi:ex:Base;1") {
		t.Fatal("removed model still IsOfModel")
	}
}
