package loadgen

import (
	"errors"
	"fmt"
	"io"
)

// errChunked reports a response body that is not valid chunked transfer
// coding.
var errChunked = errors.New("malformed chunked encoding")

// States of the chunked decoder.
const (
	csSize        = iota // reading the hex digits of a chunk size
	csExt                // skipping a chunk extension up to the line end
	csSizeLF             // after the CR of a chunk-size line
	csData               // inside chunk data
	csDataCR             // after chunk data: expecting CRLF
	csDataLF             // after the CR that follows chunk data
	csTrailer            // at the start of a trailer line, or of the final CRLF
	csTrailerLine        // inside a trailer field line
	csFinalLF            // after the CR of the empty line that ends the body
	csDone               // the body has ended
)

// chunkedReader decodes HTTP/1.1 chunked transfer coding (RFC 9112 §7.1)
// in place: it reads raw bytes into the caller's buffer and moves the chunk
// data over the framing, so it needs no buffer of its own — what lets
// thousands of connections each hold only the SSE reader's buffer. Chunk
// extensions and trailer fields are skipped. Bytes after the end of the
// body are discarded.
type chunkedReader struct {
	r      io.Reader
	state  int
	size   uint64 // while csSize: the size parsed so far; while csData: bytes left
	digits int
	err    error
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for empty := 0; ; {
		if c.state == csDone {
			return 0, io.EOF
		}
		if c.err != nil {
			return 0, c.err
		}
		n, err := c.r.Read(p)
		w, derr := c.decode(p[:n])
		switch {
		case derr != nil:
			c.err = derr
		case err == io.EOF && c.state != csDone:
			c.err = fmt.Errorf("chunked body: %w", io.ErrUnexpectedEOF)
		case err != nil && c.state != csDone:
			c.err = err
		}
		if w > 0 {
			return w, nil
		}
		if n == 0 && err == nil {
			if empty++; empty >= 100 {
				return 0, io.ErrNoProgress
			}
		}
	}
}

// decode decodes b in place and returns how many data bytes it moved to
// the front of b.
func (c *chunkedReader) decode(b []byte) (int, error) {
	w := 0
	for i := 0; i < len(b); {
		if c.state == csData {
			k := int(min(c.size, uint64(len(b)-i)))
			copy(b[w:], b[i:i+k])
			w, i = w+k, i+k
			if c.size -= uint64(k); c.size == 0 {
				c.state = csDataCR
			}
			continue
		}
		ch := b[i]
		i++
		switch c.state {
		case csSize:
			switch {
			case hexValue(ch) >= 0:
				if c.digits++; c.digits > 15 {
					return w, fmt.Errorf("%w: chunk size too long", errChunked)
				}
				c.size = c.size<<4 | uint64(hexValue(ch))
			case c.digits == 0:
				return w, fmt.Errorf("%w: chunk size expected, got %q", errChunked, ch)
			case ch == ';' || ch == ' ' || ch == '\t':
				c.state = csExt
			case ch == '\r':
				c.state = csSizeLF
			case ch == '\n':
				c.endSizeLine()
			default:
				return w, fmt.Errorf("%w: byte %q in a chunk size", errChunked, ch)
			}
		case csExt:
			switch ch {
			case '\r':
				c.state = csSizeLF
			case '\n':
				c.endSizeLine()
			}
		case csSizeLF:
			if ch != '\n' {
				return w, fmt.Errorf("%w: CR without LF after a chunk size", errChunked)
			}
			c.endSizeLine()
		case csDataCR:
			switch ch {
			case '\r':
				c.state = csDataLF
			case '\n':
				c.state, c.size, c.digits = csSize, 0, 0
			default:
				return w, fmt.Errorf("%w: chunk data longer than its size", errChunked)
			}
		case csDataLF:
			if ch != '\n' {
				return w, fmt.Errorf("%w: CR without LF after chunk data", errChunked)
			}
			c.state, c.size, c.digits = csSize, 0, 0
		case csTrailer:
			switch ch {
			case '\r':
				c.state = csFinalLF
			case '\n':
				c.state = csDone
				return w, nil
			default:
				c.state = csTrailerLine
			}
		case csTrailerLine:
			if ch == '\n' {
				c.state = csTrailer
			}
		case csFinalLF:
			if ch != '\n' {
				return w, fmt.Errorf("%w: CR without LF at the end of the body", errChunked)
			}
			c.state = csDone
			return w, nil
		}
	}
	return w, nil
}

func (c *chunkedReader) endSizeLine() {
	if c.size == 0 {
		c.state = csTrailer
	} else {
		c.state = csData
	}
}

func hexValue(ch byte) int {
	switch {
	case '0' <= ch && ch <= '9':
		return int(ch - '0')
	case 'a' <= ch && ch <= 'f':
		return int(ch-'a') + 10
	case 'A' <= ch && ch <= 'F':
		return int(ch-'A') + 10
	}
	return -1
}
