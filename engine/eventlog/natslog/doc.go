// Package natslog is the NATS JetStream backend of eventlog.Log: the
// distributed log for when one machine is not enough. Replicated over an R3
// cluster it survives the loss of a server; the embedded filelog stays the
// default for a single node.
//
// It uses github.com/nats-io/nats.go: the jetstream package to create the
// stream and run the head watcher, and plain requests for everything on the
// hot path (publishes, atomic batches, direct gets), whose headers nats.go
// v1.55 has no typed API for. Package natstest runs real in-process servers
// (github.com/nats-io/nats-server/v2) for tests and benchmarks.
//
// # Layout
//
// One JetStream stream (Options.Stream, default "TWINLOG") holds the whole
// log, and a log position is the stream sequence. The stream is created with
// no limits (nothing ever ages out), deletes and purges denied, atomic batch
// publish and direct get allowed; see StreamConfig. Open checks an existing
// stream against it and never changes it. Nothing in this package consumes a
// sequence without storing an event: rejected publishes and batches (failed
// expectations, oversized or abandoned batches) leave no gap, which the tests
// check on a single server and a cluster.
//
// The event of stream s is one message on subject
// "<Options.Subject>.<EncodeToken(s)>" whose body is event.Append of the
// event with Position and Time zero: the server's sequence and timestamp
// stand for them. EncodeToken keeps [A-Za-z0-9-] and writes every other byte
// as "_XX" (upper-case hex), so "twin/a.b" is on "twinlog.twin_2Fa_2Eb":
// injective, reversible with DecodeToken, always one literal token. The empty
// name is "_"; a name whose escaped form exceeds MaxTokenLen (200) bytes is
// "_H" plus its SHA-256 in base64url. The event body always carries the
// original name, and readers drop events whose name differs from the one
// asked for.
//
// Events of a batch of n > 1 carry the header "Twinlog-Batch: k/n".
//
// # Atomic batches and expectations
//
// One event is one publish. A batch of several is one JetStream atomic batch
// (server 2.12+): every message carries Nats-Batch-Id and
// Nats-Batch-Sequence, the last one Nats-Batch-Commit: 1 and is sent as a
// request; the server stages the batch and stores all of it at consecutive
// sequences, with nothing interleaved, or none of it. The server takes at
// most 1,000 messages per atomic batch (max_batch_size) and 50 batches in
// flight per stream: Append rejects batches over Options.MaxBatch (default
// 1,000) with eventlog.ErrInvalid rather than split them, keeps at most
// Options.MaxInflight (32) of its own batches in flight, and retries a batch
// the server turned away as busy or incomplete (it wrote nothing).
//
// An expectation on stream s becomes the header
// Nats-Expected-Last-Subject-Sequence: version, checked by the server against
// the last sequence on s's subject (a stream's version is exactly that). The
// server checks each message's expectation against the log before the batch
// plus the batch's earlier messages, refuses one on a subject the batch has
// already written, and reads one expectation per message. So an expectation
// goes on a message at or before the first that writes s: on that message
// itself, or, with Nats-Expected-Last-Subject-Sequence-Subject naming s's
// subject, on an earlier one; an expectation on a stream the batch does not
// write (a guard) may go on any message. Expectations are placed earliest
// deadline first. When they do not fit (more expectations than events,
// typically one event with guards), Append checks them all against the
// stream leader and publishes with Nats-Expected-Last-Sequence set to the
// head it read, so the batch lands only if nothing was appended in between,
// and retries otherwise; correct, but it serialises with every other append.
//
// A failed expectation yields *eventlog.ConflictError with the actual
// version: from the server's "wrong last sequence: N" when there is one
// expectation, else by reading the expected streams' versions from the
// leader. On a replicated stream the server also refuses to check an
// expectation while another write of the same subject is in flight; when all
// expectations still hold, Append retries (up to 20 times) instead of
// reporting a conflict that did not happen.
//
// # Time
//
// An event's Time is the timestamp the server stored with the first message
// of its batch, so all events of a batch share one time (a cluster stamps a
// whole batch at once; a single server stamps each message, microseconds
// apart, and readers use the first one, found through the Twinlog-Batch
// header and cached). Result.Time is that time, read back after the
// acknowledgement, which does not carry it: one extra round trip per append.
// The server assigns stamps under the stream lock in sequence order, so Time
// never decreases with Position as long as the wall clock of the server
// assigning sequences does not step back: an NTP step backwards, or, in a
// cluster, a new stream leader whose clock is behind the old one's by more
// than the failover takes, can break it. Keep the servers' clocks
// synchronised. SeekTime asks the server for the first message stamped at or
// after t (its per-block time index) and moves to the next batch when that
// message is not its batch's first.
//
// # Reads
//
// Read and ReadStream use batched direct gets (server 2.11+: seq or
// next_by_subj with batch), StreamVersion a direct get of the last message on
// the subject, Head the stream info from the leader. Any replica answers a
// direct get, and a follower may lag the leader by the replication delay;
// what it returns is still a prefix of the log. On a replicated stream,
// reads whose answer would otherwise be stale go to the leader: StreamVersion
// and SeekTime always, Read when the replica has nothing at the asked
// position, ReadStream when it returns fewer events than asked for. So
// every read reflects every acknowledged append, on one server or several.
//
// Subscribe is eventlog.Tail over Read and WaitHead. WaitHead blocks on a
// channel fed by one head watcher per Log, started on first need: an ordered
// consumer that delivers only the headers of new messages (DeliverNew,
// HeadersOnly), whose stream sequence advances the known head. It asks the
// leader every 5 s while blocked, as a safety net only.
//
// # Durability
//
// Append returns once the server acknowledged the write. What that promises
// depends on the server, not on this package:
//
//   - Default (jetstream sync_interval unset, 2 minutes): the file store hands
//     each write to the operating system at once and fsyncs every 2 minutes.
//     An acknowledged event survives a crash of the server process, but a
//     power failure or kernel crash of a single node can lose up to the last
//     2 minutes of acknowledged events. With Replicas: 3 an append is
//     acknowledged once a quorum (2 of 3) has it, so it survives the loss of
//     any one node, power included, unless a majority fails at once: this is
//     the intended production setup.
//   - SyncAlways (server option `jetstream { sync_interval: always }`, set for
//     the whole server, not per stream; natstest.Options.SyncAlways): every
//     write is fsynced before it is acknowledged, and an atomic batch shares
//     one fsync. Durable on one node, at a cost: about 2,000–3,000 single-event
//     appends per second on this machine class (see the benchmarks).
//
// On one server with file storage an atomic batch is staged in a file store of
// its own that is fsynced at commit, whatever the durability setting, which
// makes batches cost about one fsync each even in the default mode.
//
// A client cannot see or change the server's sync setting, so this package
// has no option for it: the deployment states it (natstest lets a test
// choose).
//
// # Limits
//
// Events larger than the server's max_payload (1 MiB by default), less room
// for headers, are rejected with eventlog.ErrInvalid. The JetStream API
// prefix is the default "$JS.API" (no domains or account imports yet).
package natslog
