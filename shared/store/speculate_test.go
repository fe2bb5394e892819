package store

import (
	"slices"
	"testing"
)

// A count read reaches those waiting for that project's, once each; a
// waiter that gave up is not told, and nothing is left waiting.
func TestCountWaits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		forget bool  // the first waiter of project 1 gives up before the count comes
		tell   int64 // the project whose count is read
		want   []string
	}{
		{"told", false, 1, []string{"a:7", "b:7"}},
		{"other project", false, 2, []string{"c:7"}},
		{"forgotten", true, 1, []string{"b:7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w countWaits
			var heard []string
			hear := func(name string) func(buildsHint) {
				return func(h buildsHint) { heard = append(heard, name+":"+string(rune('0'+h.count))) }
			}
			forget := w.add(1, hear("a"))
			w.add(1, hear("b"))
			w.add(2, hear("c"))
			if tc.forget {
				forget()
			}
			w.tell(tc.tell, buildsHint{count: 7, layouts: []int{1}})
			w.tell(tc.tell, buildsHint{count: 8, layouts: []int{1}}) // a second read tells nobody again
			slices.Sort(heard)
			if !slices.Equal(heard, tc.want) {
				t.Errorf("heard %v, want %v", heard, tc.want)
			}
			if _, left := w.waiting[tc.tell]; left {
				t.Errorf("project %d still has waiters", tc.tell)
			}
		})
	}
}
