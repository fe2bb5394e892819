// Package progress shows how far a long command's phases are: on a
// terminal one line per phase, redrawn with the rate and the time left;
// elsewhere (a log, a pipe) plain lines, one per tenth of the way and at
// least one every ten seconds, so that logs stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Meter writes the progress of phases, one after another, to w.
type Meter struct {
	w   io.Writer
	tty bool
	now func() time.Time
}

// New returns a Meter on w, redrawing lines when tty.
func New(w io.Writer, tty bool) *Meter { return &Meter{w: w, tty: tty, now: time.Now} }

// Discard is a Meter that shows nothing.
func Discard() *Meter { return New(io.Discard, false) }

// IsTerminal says whether f is a character device (a terminal), as the
// standard library can tell without a terminal package.
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Phase is one phase's count of done units, safe for concurrent use.
type Phase struct {
	m           *Meter
	name, unit  string
	total       int64 // 0: unknown
	mu          sync.Mutex
	done        int64
	start, last time.Time
	lastStep    int64
}

// Phase starts a phase of total units (0 if unknown).
func (m *Meter) Phase(name, unit string, total int64) *Phase {
	now := m.now()
	return &Phase{m: m, name: name, unit: unit, total: total, start: now, last: now}
}

// Add counts n more units done.
func (p *Phase) Add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	now := p.m.now()
	if p.m.tty {
		if now.Sub(p.last) >= 200*time.Millisecond {
			p.last = now
			fmt.Fprintf(p.m.w, "\r\x1b[K%s", p.line(now))
		}
		return
	}
	step := int64(-1)
	if p.total > 0 {
		step = p.done * 10 / p.total
	}
	if (step != p.lastStep && step < 10) || now.Sub(p.last) >= 10*time.Second {
		p.last, p.lastStep = now, step
		fmt.Fprintln(p.m.w, p.line(now))
	}
}

// Done ends the phase with its total and mean rate.
func (p *Phase) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	el := p.m.now().Sub(p.start)
	prefix := ""
	if p.m.tty {
		prefix = "\r\x1b[K"
	}
	fmt.Fprintf(p.m.w, "%s%-8s %d %s in %s (%s)\n", prefix, p.name, p.done, p.unit,
		el.Round(time.Millisecond), rate(p.done, el, p.unit))
}

func (p *Phase) line(now time.Time) string {
	el := now.Sub(p.start)
	s := fmt.Sprintf("%-8s %d", p.name, p.done)
	if p.total > 0 {
		s += fmt.Sprintf("/%d", p.total)
	}
	s += " " + p.unit + ", " + rate(p.done, el, p.unit)
	if p.total > 0 && p.done > 0 && p.done < p.total {
		left := time.Duration(float64(el) * float64(p.total-p.done) / float64(p.done))
		s += ", ETA " + left.Round(time.Second).String()
	}
	return s
}

func rate(n int64, el time.Duration, unit string) string {
	if el <= 0 {
		return "- " + unit + "/s"
	}
	return fmt.Sprintf("%.0f %s/s", float64(n)/el.Seconds(), unit)
}
