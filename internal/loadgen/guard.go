package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
)

// errNotLoopback reports a target outside the loopback network.
var errNotLoopback = errors.New("not a loopback address (127.0.0.0/8 or ::1); pass --allow-remote to target it")

// endpoint is a checked http URL and the address to dial for it.
type endpoint struct {
	url  *url.URL
	addr netip.AddrPort // the resolved address every connection dials
}

// resolveTarget parses raw as an http URL and resolves its host. Unless
// allowRemote, every address the host resolves to must be a loopback
// address. Of several addresses an IPv4 one is preferred, so that
// subscribers can use 127.0.0.x source addresses.
func resolveTarget(ctx context.Context, raw string, allowRemote bool) (endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("parsing URL %q: %w", raw, err)
	}
	if u.Scheme != "http" {
		return endpoint{}, fmt.Errorf("URL %q: only http is supported", raw)
	}
	host := u.Hostname()
	if host == "" {
		return endpoint{}, fmt.Errorf("URL %q has no host", raw)
	}
	port := uint16(80)
	if p := u.Port(); p != "" {
		n, err := net.LookupPort("tcp", p)
		if err != nil {
			return endpoint{}, fmt.Errorf("URL %q: port: %w", raw, err)
		}
		port = uint16(n)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return endpoint{}, fmt.Errorf("resolving %q: %w", host, err)
		}
		addrs = ips
	}
	if len(addrs) == 0 {
		return endpoint{}, fmt.Errorf("resolving %q: no addresses", host)
	}
	var pick netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if !allowRemote && !a.IsLoopback() {
			return endpoint{}, fmt.Errorf("URL %q: %s: %w", raw, a, errNotLoopback)
		}
		if !pick.IsValid() || (a.Is4() && !pick.Is4()) {
			pick = a
		}
	}
	return endpoint{url: u, addr: netip.AddrPortFrom(pick, port)}, nil
}
