package progress

import (
	"strings"
	"testing"
	"time"
)

// A phase of 100 units done one a second: plain lines at each tenth and a
// summary, or on a terminal one line redrawn in place with the rate and
// the time left.
func TestPhase(t *testing.T) {
	tests := []struct {
		name      string
		tty       bool
		lines     int
		contains  []string
		redrawing bool
	}{
		{"plain", false, 11, []string{"write    10/100 jobs, 1 jobs/s, ETA 1m30s", "write    100 jobs in 1m40s (1 jobs/s)"}, false},
		{"terminal", true, 1, []string{"\r\x1b[Kwrite    50/100 jobs, 1 jobs/s, ETA 50s", "\r\x1b[Kwrite    100 jobs in 1m40s (1 jobs/s)\n"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			m := New(&out, tc.tty)
			m.now = func() time.Time { return clock }
			p := m.Phase("write", "jobs", 100)
			for range 100 {
				clock = clock.Add(time.Second)
				p.Add(1)
			}
			p.Done()
			got := out.String()
			if n := strings.Count(got, "\n"); n != tc.lines {
				t.Errorf("%d lines, want %d:\n%q", n, tc.lines, got)
			}
			for _, want := range tc.contains {
				if !strings.Contains(got, want) {
					t.Errorf("no %q in\n%q", want, got)
				}
			}
			if strings.Contains(got, "\r") != tc.redrawing {
				t.Errorf("redrawing %v, want %v: %q", !tc.redrawing, tc.redrawing, got)
			}
		})
	}
}
