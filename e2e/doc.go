// Package e2e holds sluice's end-to-end tests with real clients: the
// sluice binary driven by headless Chromium through the demo page, and the
// engine's default priming read by Chromium's EventSource. It is a separate
// module so that the main module does not depend on chromedp.
//
// The tests need /usr/bin/chromium (apt-get install chromium). Without it
// they skip, except when CI=true, where a missing browser fails them.
package e2e
