package twinload

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twinlog/twinlog/bench/stdgraph"
)

func TestProfTmp(t *testing.T) {
	cfg := Config{Graph: stdgraph.Config{Buildings: 100}, Duration: 5 * time.Second, Progress: os.Stdout, CPUProfile: "/tmp/tl/tw-"}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
}
