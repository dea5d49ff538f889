package fsm

// SetMaxGrantsPerKey lowers the grant quota for a test and returns a
// function that restores it.
func SetMaxGrantsPerKey(n int) (restore func()) {
	old := maxGrantsPerKey
	maxGrantsPerKey = n
	return func() { maxGrantsPerKey = old }
}
