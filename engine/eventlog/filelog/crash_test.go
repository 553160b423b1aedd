//go:build unix

package filelog

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/event"
)

// The crash test re-executes the test binary as a child that appends under
// load; the parent kills it with SIGKILL and checks the log.
const (
	crashChildEnv = "TWINLOG_CRASH_CHILD"
	crashDirEnv   = "TWINLOG_CRASH_DIR"
	// crashTearEnv makes the child kill itself in the middle of a segment
	// write now and then, leaving a torn frame.
	crashTearEnv = "TWINLOG_CRASH_TEAR"
)

// tearFS writes part of a segment write, then SIGKILLs its own process,
// once in about every n writes.
type tearFS struct {
	FS
	n int
}

func (f tearFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, segSuffix) {
		return file, err
	}
	return tearFile{file, f.n}, nil
}

type tearFile struct {
	File
	n int
}

func (f tearFile) Allocate(size int64) error {
	if a, ok := f.File.(Allocator); ok {
		return a.Allocate(size)
	}
	return errors.ErrUnsupported
}

func (f tearFile) WriteAt(p []byte, off int64) (int, error) {
	if len(p) > 1 && rand.IntN(f.n) == 0 {
		f.File.WriteAt(p[:1+rand.IntN(len(p)-1)], off)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	return f.File.WriteAt(p, off)
}

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) == "1" {
		os.Exit(crashChild(os.Getenv(crashDirEnv)))
	}
	os.Exit(m.Run())
}

var crashOpts = Options{SegmentSize: 256 << 10, IndexInterval: 4 << 10}

// crashPayload returns a self-checking payload: random bytes then their
// CRC-32C.
func crashPayload(rng *rand.Rand) []byte {
	b := make([]byte, 8+rng.IntN(300))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func payloadIntact(p []byte) bool {
	return len(p) >= 12 && crc32.Checksum(p[:len(p)-4], castagnoli) == binary.LittleEndian.Uint32(p[len(p)-4:])
}

// crashChild appends from several goroutines until killed, printing
// "position crc" for each event after its Append returned.
func crashChild(dir string) int {
	opts := crashOpts
	opts.Logger = quiet
	if os.Getenv(crashTearEnv) == "1" {
		opts.FS = tearFS{OSFS, 300}
	}
	l, err := Open(dir, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 3
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(g)))
			var line []byte
			for {
				batch := make([]event.Event, 1+rng.IntN(4))
				for i := range batch {
					batch[i] = event.Event{Stream: fmt.Sprintf("twin/%d", rng.IntN(50)), Type: "t", Payload: crashPayload(rng)}
				}
				r, err := l.Append(context.Background(), batch)
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(4)
				}
				line = line[:0]
				for i := range batch {
					line = fmt.Appendf(line, "%d %d\n", r.First+uint64(i), crc32.Checksum(batch[i].Payload, castagnoli))
				}
				out.Lock()
				os.Stdout.Write(line)
				out.Unlock()
			}
		}()
	}
	wg.Wait()
	return 0
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-executes the test binary")
	}
	dir := t.TempDir()
	acked := make(map[uint64]uint32) // position -> payload checksum
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	const rounds = 24
	torn := 0
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"=1", crashDirEnv+"="+dir)
		if round%2 == 1 {
			cmd.Env = append(cmd.Env, crashTearEnv+"=1")
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan map[uint64]uint32, 1)
		go func() {
			got := make(map[uint64]uint32)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) != 2 {
					continue // a line cut by the kill
				}
				p, err1 := strconv.ParseUint(f[0], 10, 64)
				c, err2 := strconv.ParseUint(f[1], 10, 32)
				if err1 == nil && err2 == nil {
					got[p] = uint32(c)
				}
			}
			io.Copy(io.Discard, stdout)
			lines <- got
		}()
		time.Sleep(time.Duration(50+rng.IntN(300)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		got := <-lines
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child exited on its own (%v): %s", round, err, stderr.String())
		}
		for p, c := range got {
			if old, ok := acked[p]; ok && old != c {
				t.Fatalf("round %d: position %d acknowledged twice with different payloads", round, p)
			}
			acked[p] = c
		}

		opts := crashOpts
		opts.Logger = quiet
		l, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		if l.Recovered().TornSegment != "" {
			torn++
		}
		evs, err := readAllErr(l) // checks positions are contiguous from 1
		if err != nil {
			t.Fatalf("round %d: read: %v", round, err)
		}
		for _, e := range evs {
			if !payloadIntact(e.Payload) {
				t.Fatalf("round %d: event %d has a garbled payload", round, e.Position)
			}
		}
		for p, c := range acked {
			if p > uint64(len(evs)) {
				t.Fatalf("round %d: acknowledged position %d lost (head %d)", round, p, len(evs))
			}
			if got := crc32.Checksum(evs[p-1].Payload, castagnoli); got != c {
				t.Fatalf("round %d: position %d holds another payload", round, p)
			}
		}
		t.Logf("round %d: %d acknowledged this round, head %d, recovered %+v", round, len(got), len(evs), l.Recovered())
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no append was acknowledged")
	}
	if torn == 0 {
		t.Error("no round left a torn tail to recover")
	}
	t.Logf("%d rounds, %d events acknowledged, %d torn tails cut", rounds, len(acked), torn)
}
