package handlers

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// A handler's writes record their cause twice. The event envelope names
// the triggering event (CausationID) and the first event of the cascade
// (CorrelationID), through twins.WithCause, for history and notifications.
// The actor carries what the runner itself needs to de-duplicate outputs
// after a restart and to bound cascades (each output, the hop count and
// the path):
//
//	handler:<name>@<version>;c=<cause position>.<seq>[,<cause position>.<seq>...];h=<hop>;p=<k1>,<k2>...
//
// where each k is the hex FNV-1a hash of one (handler, twin) pair on the
// cascade's path. A write usually stands for one output; consecutive
// patches of one twin by one invocation, whose causes share a hop count
// and a path, are written as one patch that names each of its outputs (see
// merge), oldest first.

type cause struct {
	handler string // name, "" when the event was not written by a handler
	outputs []outputRef
	hop     int
	path    []string
}

// outputRef names one output: its cause's position and its sequence number
// among that cause's outputs.
type outputRef struct {
	pos uint64
	seq int
}

func (o outputRef) key() string { return outputKey(o.pos, o.seq) }

const actorPrefix = "handler:"

func formatActor(name, version string, c cause) string {
	var b strings.Builder
	b.WriteString(actorPrefix)
	b.WriteString(name)
	b.WriteByte('@')
	b.WriteString(version)
	b.WriteString(";c=")
	for i, o := range c.outputs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(o.pos, 10))
		b.WriteByte('.')
		b.WriteString(strconv.Itoa(o.seq))
	}
	b.WriteString(";h=")
	b.WriteString(strconv.Itoa(c.hop))
	b.WriteString(";p=")
	b.WriteString(strings.Join(c.path, ","))
	return b.String()
}

// parseActor returns the cause recorded in an actor; the zero cause (hop 0)
// for actors that are not handlers.
func parseActor(actor string) cause {
	rest, ok := strings.CutPrefix(actor, actorPrefix)
	if !ok {
		return cause{}
	}
	var c cause
	fields := strings.Split(rest, ";")
	c.handler, _, _ = strings.Cut(fields[0], "@")
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "c":
			for o := range strings.SplitSeq(v, ",") {
				p, s, _ := strings.Cut(o, ".")
				var ref outputRef
				ref.pos, _ = strconv.ParseUint(p, 10, 64)
				ref.seq, _ = strconv.Atoi(s)
				c.outputs = append(c.outputs, ref)
			}
		case "h":
			c.hop, _ = strconv.Atoi(v)
		case "p":
			if v != "" {
				c.path = strings.Split(v, ",")
			}
		}
	}
	return c
}

// pathKey names one (handler, twin) step of a cascade.
func pathKey(handler, twin string) string {
	h := fnv.New32a()
	h.Write([]byte(handler))
	h.Write([]byte{0})
	h.Write([]byte(twin))
	return strconv.FormatUint(uint64(h.Sum32()), 16)
}

// outputKey identifies an output for de-duplication: its cause and its
// sequence number.
func outputKey(pos uint64, seq int) string {
	return strconv.FormatUint(pos, 10) + "." + strconv.Itoa(seq)
}
