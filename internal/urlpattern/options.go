package urlpattern

// https://urlpattern.spec.whatwg.org/#options-header
type options struct {
	// MUST be an ASCII scode point
	delimiterCodePoint byte
	prefixCodePoint    byte
	ignoreCase         bool
	// maxInsts, when positive, refuses a component whose regular
	// expression would compile to more instructions (sluice addition).
	maxInsts int
}
