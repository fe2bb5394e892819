package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// The refs importRefs adds to demo/backend besides the demo's own (main,
// feature/login, fix/cache): a tag and a branch of one name, unicode, and a
// ref with the separator of the index keys in it.
const (
	refTag     = "v1.0" // a tag, and a branch of the same name
	refUnicode = "feature/ünïcode-✓"
	refHash    = "fix/a#b"
	refJobs    = 30000 // the first id of most jobs importRefs adds
)

// refRow is what the ref tests read of a job, stored or listed.
type refRow struct {
	ID        int64           `json:"id"`
	ProjectID int64           `json:"project_id"`
	Ref       string          `json:"ref"`
	Tag       bool            `json:"tag"`
	Status    string          `json:"status"`
	Bridge    json.RawMessage `json:"downstream_pipeline"`
}

// importRefs adds, by more imports, builds of project 1 on the refs above:
// pipelines on the tag and on the branch of the same name, on the unicode
// ref and on the ref with a "#", each a copy of a demo build. The last
// pipeline comes in its own import and is older (lower ids) than the ones
// before it, so that the importer renumbers the project's builds, and its
// refs', around it.
func (d *fixture) importRefs(t *testing.T) []json.RawMessage {
	t.Helper()
	var base map[string]any
	for _, raw := range d.world.Jobs {
		if err := json.Unmarshal(raw, &base); err != nil {
			t.Fatal(err)
		}
		if base["project_id"] == float64(1) && base["downstream_pipeline"] == nil {
			break
		}
	}
	statuses := []string{"success", "failed", "success", "canceled", "success"}
	var added []json.RawMessage
	for i, r := range []struct {
		ref string
		tag bool
	}{{refTag, true}, {refTag, false}, {refUnicode, false}, {refHash, false}, {refTag, true}} {
		pl := copyObject(base["pipeline"])
		pl["id"], pl["iid"], pl["ref"] = 3000+i, 300+i, r.ref
		id := int64(refJobs + 7*i)
		if i == 4 {
			id = refJobs - 100
		}
		for k := range 7 {
			j := copyObject(base)
			delete(j, "retried")
			delete(j, "token")
			delete(j, "environment")
			delete(j, "artifacts_archive")
			j["id"], j["ref"], j["tag"], j["pipeline"] = id, r.ref, r.tag, pl
			j["status"], j["name"] = statuses[(i+k)%len(statuses)], fmt.Sprintf("job-%d", k)
			j["web_url"] = fmt.Sprintf("https://gitlab.example.com/demo/backend/-/jobs/%d", id)
			b, err := json.Marshal(j)
			if err != nil {
				t.Fatal(err)
			}
			added = append(added, b)
			id++
		}
	}
	im := &world.Importer{Store: d.Deps.Store, Files: d.Files, Now: d.Deps.Now}
	for _, js := range [][]json.RawMessage{added[:28], added[28:]} {
		w := &world.World{InstanceURL: d.world.InstanceURL, Users: d.world.Users, Groups: d.world.Groups,
			Projects: d.world.Projects, Jobs: js}
		if _, err := im.Import(context.Background(), w); err != nil {
			t.Fatal(err)
		}
	}
	d.Counter.Reset()
	return added
}

// copyObject copies a JSON object one level deep.
func copyObject(v any) map[string]any {
	out := map[string]any{}
	for k, x := range v.(map[string]any) {
		out[k] = x
	}
	return out
}

// refWant is the ids GitLab lists for project 1 with ref ("": any) and
// scopes: builds of the ref's pipelines (tag or branch alike), newest first.
func refWant(t *testing.T, all []json.RawMessage, ref string, scopes []string) []int64 {
	t.Helper()
	var out []int64
	for _, raw := range all {
		var j refRow
		if err := json.Unmarshal(raw, &j); err != nil {
			t.Fatal(err)
		}
		if j.ProjectID == 1 && j.Bridge == nil && (ref == "" || j.Ref == ref) && (len(scopes) == 0 || slices.Contains(scopes, j.Status)) {
			out = append(out, j.ID)
		}
	}
	slices.SortFunc(out, func(a, b int64) int { return int(b - a) })
	return out
}

// refQuery is the query of a list with ref (none when "") and scopes.
func refQuery(ref string, scopes []string) string {
	var q []string
	if ref != "" {
		q = append(q, "ref="+url.QueryEscape(ref))
	}
	for _, s := range scopes {
		q = append(q, "scope[]="+s)
	}
	return strings.Join(q, "&")
}

// Offset pages (walked, and deep ones read directly) and keyset walks of a
// ref, alone and with scope, list exactly the ref's builds, for refs with
// slashes, unicode and a "#", and a tag and a branch of the same name.
func TestListProjectJobsByRef(t *testing.T) {
	d := newDemo(t, 60)
	all := append(slices.Clone(d.world.Jobs), d.importRefs(t)...)
	m := token(demo.TokenMaintainer)
	tests := []struct {
		ref    string
		scopes []string
	}{
		{"main", nil},
		{"feature/login", nil},
		{"fix/cache", []string{"success"}},
		{"main", []string{"success", "failed"}},
		{refTag, nil},
		{refTag, []string{"success", "canceled"}},
		{refUnicode, nil},
		{refHash, nil},
		{refHash, []string{"failed"}},
		{"no-such-ref", nil},
		{"feature", nil}, // a prefix of a ref is not the ref
	}
	for _, tc := range tests {
		t.Run(refQuery(tc.ref, tc.scopes), func(t *testing.T) {
			want := refWant(t, all, tc.ref, tc.scopes)
			base := "/api/v4/projects/demo%2Fbackend/jobs?" + refQuery(tc.ref, tc.scopes)
			const per = 4
			var walked []int64
			for page := "1"; page != ""; {
				w := d.call(t, "list-project-jobs", http.MethodGet, base+"&per_page=4&page="+page, m)
				if w.Code != 200 {
					t.Fatalf("page %s: %d %s", page, w.Code, w.Body)
				}
				walked = append(walked, ids(t, w.Body.String())...)
				page = w.Header().Get("X-Next-Page")
			}
			if !slices.Equal(walked, want) {
				t.Fatalf("offset walk %v, want %v", walked, want)
			}
			// A deep page read first, as a client jumping there would.
			for _, page := range []int{2, (len(want)+per-1)/per - 1, (len(want) + per - 1) / per} {
				if page < 1 {
					continue
				}
				d.coldContainer()
				w := d.call(t, "list-project-jobs", http.MethodGet, fmt.Sprintf("%s&per_page=%d&page=%d", base, per, page), m)
				lo := min((page-1)*per, len(want))
				if got, wantPage := ids(t, w.Body.String()), want[lo:min(lo+per, len(want))]; !slices.Equal(got, wantPage) {
					t.Errorf("page %d: %v, want %v", page, got, wantPage)
				}
			}
			var keyset []int64
			for target := base + "&pagination=keyset&per_page=3"; target != ""; {
				w := d.call(t, "list-project-jobs", http.MethodGet, target, m)
				if w.Code != 200 {
					t.Fatalf("%s: %d %s", target, w.Code, w.Body)
				}
				keyset = append(keyset, ids(t, w.Body.String())...)
				target = nextLink(t, w.Header().Get("Link"))
				if target != "" && !strings.Contains(target, "ref="+url.QueryEscape(tc.ref)) {
					t.Fatalf("next link %s lost the ref", target)
				}
			}
			if !slices.Equal(keyset, want) {
				t.Fatalf("keyset walk %v, want %v", keyset, want)
			}
		})
	}
}

// A tag and a branch of the same name are one ref to the filter: both
// kinds of build come back, as GitLab filters on the ref string.
func TestListProjectJobsByRefTagAndBranch(t *testing.T) {
	d := newDemo(t, 20)
	d.importRefs(t)
	w := d.call(t, "list-project-jobs", http.MethodGet, "/api/v4/projects/1/jobs?per_page=100&ref="+refTag, token(demo.TokenMaintainer))
	var rows []refRow
	if err := json.Unmarshal(w.Body.Bytes(), &rows); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
	kinds := map[bool]int{}
	for _, r := range rows {
		if r.Ref != refTag {
			t.Errorf("job %d of ref %q", r.ID, r.Ref)
		}
		kinds[r.Tag]++
	}
	if kinds[true] != 14 || kinds[false] != 7 {
		t.Errorf("tag builds %d, branch builds %d; want 14 and 7", kinds[true], kinds[false])
	}
}

// The parameter itself: blank or whitespace is no filter, the last value
// counts, an array is Grape's 400 (after the credentials, before the
// project), and a ref keyset cursor carries the ref ordinal that its list
// needs (an unfiltered list's cursor is refused, as a scoped one is there).
func TestListProjectJobsRefParameter(t *testing.T) {
	d := newDemo(t, 40)
	m := token(demo.TokenMaintainer)
	all := listIDs(t, d, "/api/v4/projects/1/jobs?per_page=100")
	main := refWant(t, d.world.Jobs, "main", nil)
	tests := []struct {
		name, query string
		status      int
		want        []int64 // the first page's ids, per_page=100
		body        string
	}{
		{"absent", "", 200, all, ""},
		{"empty", "&ref=", 200, all, ""},
		{"whitespace", "&ref=%20%09", 200, all, ""},
		{"main", "&ref=main", 200, main, ""},
		{"the last value counts", "&ref=fix/cache&ref=main", 200, main, ""},
		{"untrimmed", "&ref=%20main", 200, nil, ""},
		{"array", "&ref[]=main", 400, nil, `{"error":"ref is invalid"}`},
		{"unfiltered cursor", "&ref=main&pagination=keyset&cursor=" + cursorOf(t, d, ""), 400, nil, `{"error":"cursor is invalid"}`},
		{"scoped cursor", "&ref=main&pagination=keyset&cursor=" + cursorOf(t, d, "&scope=success"), 400, nil, `{"error":"cursor is invalid"}`},
		{"ref cursor on the unfiltered list", "&pagination=keyset&cursor=" + cursorOf(t, d, "&ref=main"), 400, nil, `{"error":"cursor is invalid"}`},
		{"scoped deep page past GitLab's limit", "&ref=main&scope=failed&page=501", 405, nil, "Offset pagination has a maximum allowed offset of 50000"},
		{"ref deep page past it", "&ref=main&page=501", 200, nil, ""},
		{"a ref longer than any key", "&ref=" + strings.Repeat("r", 2000), 200, nil, ""},
		{"its deep page", "&ref=" + strings.Repeat("r", 2000) + "&page=3", 200, nil, ""},
		{"its scoped page", "&ref=" + strings.Repeat("r", 2000) + "&scope=failed", 200, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := d.call(t, "list-project-jobs", http.MethodGet, "/api/v4/projects/1/jobs?per_page=100"+tc.query, m)
			if w.Code != tc.status {
				t.Fatalf("%d, want %d: %.300s", w.Code, tc.status, w.Body)
			}
			mustContain(t, w.Body.String(), tc.body)
			if w.Code == 200 && !strings.Contains(tc.query, "keyset") {
				if got := ids(t, w.Body.String()); !slices.Equal(got, tc.want) {
					t.Errorf("ids %v, want %v", got, tc.want)
				}
			}
		})
	}
	if w := d.call(t, "list-project-jobs", http.MethodGet, "/api/v4/projects/1/jobs?ref[]=main", nil); w.Code != 401 {
		t.Errorf("anonymous with an array ref: %d, want 401 first", w.Code)
	}
}

// cursorOf is the cursor after the first 5-job keyset page of project 1
// with query.
func cursorOf(t *testing.T, d *fixture, query string) string {
	t.Helper()
	w := d.call(t, "list-project-jobs", http.MethodGet, "/api/v4/projects/1/jobs?pagination=keyset&per_page=5"+query, token(demo.TokenMaintainer))
	next := nextLink(t, w.Header().Get("Link"))
	u, err := url.Parse(next)
	if err != nil || u.Query().Get("cursor") == "" {
		t.Fatalf("no cursor in %q (%v)", next, err)
	}
	return u.Query().Get("cursor")
}

// Concurrent retries of builds of one ref each take the next ref ordinal
// in the creating transaction: afterwards the ref's offset pages, deep
// ones too, list the new jobs first and every build once.
func TestRetriesKeepRefPagesRight(t *testing.T) {
	d := newDemo(t, 40)
	m := token(demo.TokenMaintainer)
	main := refWant(t, d.world.Jobs, "main", nil)
	targets := jobsOf(t, d, 6, func(j *jobs.Job) bool { return j.Ref == "main" && retryable(j) })
	created := make([]int64, len(targets))
	var wg sync.WaitGroup
	for i, id := range targets {
		wg.Go(func() {
			w := d.post(t, "retry-job", fmt.Sprintf("/api/v4/projects/1/jobs/%d/retry", id), "", m)
			if w.Code != http.StatusCreated {
				t.Errorf("retry %d: %d %s", id, w.Code, w.Body)
				return
			}
			created[i] = decode[struct{ ID int64 }](t, w.Body).ID
		})
	}
	wg.Wait()
	slices.SortFunc(created, func(a, b int64) int { return int(b - a) })
	want := append(created, main...)
	ordinals := map[int64]bool{}
	for _, id := range created {
		ordinals[d.stored(t, id).RefOrdinal] = true
	}
	for o := int64(len(main)) + 1; o <= int64(len(want)); o++ {
		if !ordinals[o] {
			t.Errorf("ref ordinal %d unused: %v", o, ordinals)
		}
	}
	var walked []int64
	for page := 1; ; page++ {
		d.coldContainer() // each page's key range from the ref's count read fresh
		got := listIDs(t, d, fmt.Sprintf("/api/v4/projects/1/jobs?ref=main&per_page=5&page=%d", page))
		if len(got) == 0 {
			break
		}
		walked = append(walked, got...)
	}
	if !slices.Equal(walked, want) {
		t.Errorf("walk after retries %v, want %v", walked, want)
	}
}
