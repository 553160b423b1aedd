package twingraph

// SetLoadBlocks sets how many twins a snapshot needs for a parallel load
// and how many twins a block of it holds, with three goroutines whatever
// GOMAXPROCS, and returns a function restoring the previous values.
func SetLoadBlocks(parallel, block int) (restore func()) {
	p, b, w := parallelTwins, blockTwins, loadWorkers
	parallelTwins, blockTwins, loadWorkers = parallel, block, 3
	return func() { parallelTwins, blockTwins, loadWorkers = p, b, w }
}
