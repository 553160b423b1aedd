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

// A page is the room for a page's row list and its arena chunk list: most
// pages need no more, so a query allocates neither.
type page struct {
	rows   [32][]byte
	chunks [4][]byte
}

var pages = sync.Pool{New: func() any { return new(page) }}

func getPage() *page { return pages.Get().(*page) }

// putPage recycles p, dropping its references to rows and chunks.
func putPage(p *page) {
	*p = page{}
	pages.Put(p)
}
