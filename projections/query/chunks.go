package query

import (
	"math/bits"
	"sync"
)

// Sizes of the chunks page rows are encoded in.
const (
	minChunk = 2 << 10
	maxChunk = 64 << 10
)

// chunkPools recycle released chunks, one pool per size from minChunk to
// maxChunk (2, 4, ..., 64 KiB).
var chunkPools [6]sync.Pool

func chunkClass(size int) int { return bits.TrailingZeros(uint(size)) - bits.TrailingZeros(minChunk) }

// getChunk returns an empty buffer of capacity size, a power of two from
// minChunk to maxChunk.
func getChunk(size int) []byte {
	if b, ok := chunkPools[chunkClass(size)].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, size)
}

// putChunk recycles a buffer getChunk returned.
func putChunk(b []byte) {
	c := cap(b)
	if c < minChunk || c > maxChunk || c&(c-1) != 0 {
		return
	}
	b = b[:0]
	chunkPools[chunkClass(c)].Put(&b)
}
