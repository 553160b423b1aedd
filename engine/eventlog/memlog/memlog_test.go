package memlog_test

import (
	"testing"

	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/logtest"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
)

func TestConformance(t *testing.T) {
	logtest.Run(t, logtest.Backend{New: func(t *testing.T) eventlog.Log { return memlog.New(memlog.Options{}) }})
}
