// Package filelog is the embedded, durable eventlog.Log: twinlog's default
// system of record, a directory of append-only segment files.
//
// # Writing
//
// Append encodes its batch in the caller's goroutine and queues it to one
// writer goroutine. The writer takes everything queued (up to
// Options.MaxBatchBytes), checks each request's expectations in order
// against the in-memory table stream → version (a failed request gets an
// *eventlog.ConflictError and writes nothing; the others proceed), frames
// the rest into one buffer, issues one write and one fdatasync, then
// publishes the new head and acknowledges every request of the group (group
// commit). All frames of a group carry the same time, max(now, previous
// time), so times never decrease. An append is acknowledged only once it is
// durable; a read sees it from then on.
//
// A failed or short write is truncated back where possible; after any
// failed write or sync the log is failed: the waiting appenders and every
// later Append get an error wrapping eventlog.ErrFailed (after a failed
// fsync the page cache's state is unknown), and the log must be reopened,
// which recovers exactly the acknowledged events (an unacknowledged batch
// may or may not be present, but never in part).
//
// # Files
//
// The directory holds:
//
//	LOCK                        flock(2)ed while a Log has the directory open
//	00000000000000000001.seg    segment files, named by their first position,
//	00000000000001234568.seg    zero-padded to 20 digits
//	00000000000000000001.idx    index file of each sealed (not last) segment
//
// All integers are little-endian. A segment starts with a 32-byte header:
//
//	magic    [8]byte  "TWLGSEG1"
//	version  uint32   1
//	_        uint32   zero
//	base     uint64   position of the segment's first event (= file name)
//	_        uint32   zero
//	crc      uint32   CRC-32C (Castagnoli) of bytes 0..27
//
// then frames, back to back, then zeros to the end of the file: a segment is
// created preallocated (fallocate(2)) to Options.SegmentSize where the file
// system allows, so that appends write inside the file and their fdatasync has
// no size change to commit. The data ends at the first frame header of zeros,
// or at the end of the file. A frame holds the events of one Append
// (so a crash never leaves part of a batch), all stamped with one time:
//
//	length   uint32   n, the number of bytes after this 28-byte header
//	crc      uint32   CRC-32C of length ‖ bytes 8..28+n (everything but crc)
//	first    uint64   position of the frame's first event
//	time     int64    log time of every event of the frame, Unix ns
//	count    uint32   number of events, ≥ 1
//	backs    count × uvarint: for each event, its position minus the
//	         position of the previous event of the same stream, 0 when it is
//	         the stream's first event (back-pointers for ReadStream)
//	events   count × (uvarint length, event.Append encoding with Position
//	         and Time zero: the frame header carries them)
//
// Frames within a segment and segments within the directory are
// contiguous: a frame's first is the previous frame's first+count, and a
// segment's base is the previous segment's last position plus one. A
// segment is sealed when the next frame would take it past
// Options.SegmentSize (a frame larger than that gets a segment of its own):
// it is truncated to the end of its data and synced, then its index file is
// written; the next segment is created with its header and preallocation
// synced, and the directory synced, before any frame is written to it.
//
// An index file, written when its segment is sealed (to name.tmp, synced,
// renamed, directory synced), holds what Open needs instead of scanning
// the segment:
//
//	magic    [8]byte  "TWLGIDX1"
//	version  uint32   1
//	_        uint32
//	base     uint64   the segment's base
//	size     uint64   the segment file's size (header plus frames; a sealed
//	                  segment keeps no preallocated rest)
//	last     uint64   position of the segment's last event
//	lastTime int64    time of its last frame
//	entries  uint32   number of sparse index entries
//	streams  uint32   number of stream table entries
//	_        [8]byte
//	entries × (pos uint64, time int64, offset uint64): the sparse index, one
//	          entry for the segment's first frame and then for the first
//	          frame at least Options.IndexInterval bytes past the previous
//	          entry
//	streams × (uvarint length, name, uvarint position): each stream written
//	          in the segment and the position of its last event there
//	crc      uint32   CRC-32C of everything before it
//
// The same sparse index is kept in memory for every segment (about 24 bytes
// per 64 KiB of log), with the stream → version table. Read finds the
// frame to start from by binary search over it and then reads forward in
// large chunks; SeekTime does the same by time; ReadStream follows the
// back-pointers. A segment also remembers where its last 16 frames start,
// so that a reader following the head, reading from the position after
// the last it read, starts at that frame rather than up to an index
// interval before it.
//
// # Recovery
//
// Open never scans the whole log. Sealed segments come from their index
// files; one whose index file is missing or invalid (bad checksum, wrong
// base, size not the segment's) is scanned and its index file rewritten,
// and any bad frame in it is corruption; one still preallocated (a crash
// between sealing it and writing its index file) is truncated to its data.
// The last (active) segment is scanned frame by frame up to the end of its
// data: a frame header of zeros (or fewer bytes than a header, all zero, at
// the end of the file) is the clean end, the unwritten rest of the
// preallocation, and is not reported. The first bytes that are neither a
// valid frame nor zeros — too short for a header or for the length it
// declares, a checksum mismatch, a malformed header, which includes a frame
// partly written inside the preallocation — and everything after them are a
// torn tail, reported through Options.Logger and (*Log).Recovered. Either
// way the segment is truncated to the end of its last valid frame,
// preallocated again and synced, so that no byte past the data (a torn
// frame, or the frames of an unacknowledged group behind a header that never
// reached the disk) can ever be read as a frame. A last segment whose header
// is incomplete (a crash while creating it) is rewritten empty. A frame that
// passes its checksum but is out of sequence or holds an undecodable event,
// a missing segment, or a bad frame in a sealed segment make Open fail with
// an error wrapping eventlog.ErrCorrupt: the log never drops acknowledged
// events silently.
// Reads verify every frame's checksum and return an error wrapping
// eventlog.ErrCorrupt, never a corrupt event; an event written by a newer
// codec surfaces as event.ErrVersion.
package filelog
