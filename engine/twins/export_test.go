package twins

// ParsePatchJSON exposes the general patch parser to tests.
var ParsePatchJSON = parsePatchJSON
