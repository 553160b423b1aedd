package telemetry

// SetParallelRows sets the row count from which queries split their
// buckets among goroutines, and returns the previous one.
func SetParallelRows(n int64) int64 {
	old := parallelRows
	parallelRows = n
	return old
}
