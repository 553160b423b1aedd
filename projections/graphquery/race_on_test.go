//go:build race

package graphquery

// raceEnabled: the race detector's instrumentation allocates, and
// sync.Pool drops items at random under it.
const raceEnabled = true
