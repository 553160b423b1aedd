package host

// KeptModules returns how many modules h keeps compiled.
func KeptModules(h *Host) int {
	h.kept.Lock()
	defer h.kept.Unlock()
	return len(h.kept.mods)
}
