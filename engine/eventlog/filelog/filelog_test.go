package filelog

import (
	"testing"

	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/logtest"
)

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"default", Options{}},
		{"small-segments", Options{SegmentSize: MinSegmentSize, IndexInterval: 128}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dirs := make(map[eventlog.Log]string)
			logtest.Run(t, logtest.Backend{
				New: func(t *testing.T) eventlog.Log {
					dir := t.TempDir()
					l, err := Open(dir, tc.opts)
					if err != nil {
						t.Fatal(err)
					}
					dirs[l] = dir
					return l
				},
				Reopen: func(t *testing.T, old eventlog.Log) eventlog.Log {
					if err := old.Close(); err != nil {
						t.Fatal(err)
					}
					l, err := Open(dirs[old], tc.opts)
					if err != nil {
						t.Fatal(err)
					}
					dirs[l] = dirs[old]
					return l
				},
			})
		})
	}
}
