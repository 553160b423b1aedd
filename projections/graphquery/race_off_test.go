//go:build !race

package graphquery

const raceEnabled = false
