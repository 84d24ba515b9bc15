package loadgen

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http/httputil"
	"strings"
	"testing"
	"testing/iotest"
)

// splitReader returns its data in pieces of random sizes.
type splitReader struct {
	data []byte
	r    *rand.Rand
}

func (s *splitReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(s.data), 1+s.r.IntN(40))
	copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

func TestChunkedReaderRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 200 {
		var want, enc bytes.Buffer
		w := httputil.NewChunkedWriter(&enc)
		for range r.IntN(20) {
			chunk := make([]byte, 1+r.IntN(300))
			for i := range chunk {
				chunk[i] = byte('a' + r.IntN(26))
			}
			want.Write(chunk)
			w.Write(chunk)
		}
		w.Close()
		enc.WriteString("\r\n") // the end of an empty trailer section
		enc.WriteString("GARBAGE after the body")
		var src io.Reader = &splitReader{data: enc.Bytes(), r: r}
		if round%10 == 0 {
			src = iotest.OneByteReader(bytes.NewReader(enc.Bytes()))
		}
		got, err := io.ReadAll(&chunkedReader{r: src})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("round %d: decoded %q, want %q", round, got, want.Bytes())
		}
	}
}

func TestChunkedReaderExtensionsAndTrailers(t *testing.T) {
	in := "5;name=value\r\nhello\r\nA \r\n, world!!!\r\n0\r\nTrailer: yes\r\nOther: x\r\n\r\n"
	got, err := io.ReadAll(&chunkedReader{r: iotest.HalfReader(strings.NewReader(in))})
	if err != nil || string(got) != "hello, world!!!" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestChunkedReaderErrors(t *testing.T) {
	for _, in := range []string{
		"zz\r\nhello\r\n0\r\n\r\n",   // not hex
		"5\r\nhello!\r\n0\r\n\r\n",   // data longer than the size
		"5\rXhello\r\n0\r\n\r\n",     // CR without LF
		"ffffffffffffffff1\r\nx\r\n", // size overflow
		"\r\n",                       // empty size
		"5\r\nhel",                   // truncated
		"5\r\nhello\r\n",             // no last chunk
	} {
		_, err := io.ReadAll(&chunkedReader{r: strings.NewReader(in)})
		if err == nil {
			t.Errorf("%q: no error", in)
		}
		if in == "5\r\nhel" && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: %v, want unexpected EOF", in, err)
		}
	}
}
