package store

import (
	"context"
	"maps"
	"strings"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// ProjectRef names a project by numeric id or by full path.
type ProjectRef struct {
	ID   int64
	Path string
}

// IsZero reports whether the ref names no project.
func (r ProjectRef) IsZero() bool { return r.ID == 0 && r.Path == "" }

// Lookup says what a request needs before it can authorize.
type Lookup struct {
	TokenHash string     // "" for anonymous requests
	Project   ProjectRef // zero when the route has no project
	JobID     int64      // a job to read in the same round trips, or 0
	Related   bool       // also read what that job refers to (see Related)
	// PipelineID is a pipeline to read in the first round trip, or 0.
	PipelineID int64
	// TokenProject makes a job token's own project the request's project,
	// for routes without one (GET /job).
	TokenProject bool
	// Once is an action's Idempotency-Key record to read (OnceKey), or "".
	Once string
	// CachedProject lets the project come from the warm cache (read up to
	// WarmTTL ago): for reads that need no exact build count.
	CachedProject bool
	// Ref is a pipeline ref whose build count to read with the project
	// (Found.RefBuilds), or "": a ref's offset pages past the first.
	Ref string
	// JobRef reads the build count of the job's ref too, fresh, into the
	// warm cache: for actions that may create a build of it (see Apply),
	// in the round trip after the job's.
	JobRef bool
}

// Found is what a Lookup found. Missing things are nil, but Related, which
// is empty unless Lookup.Related asked for the job's.
type Found struct {
	jobs.Identity // the credentials' token, user, access in Project and job
	Project       *jobs.Project
	Job           *jobs.Job      // the job asked for by Lookup.JobID
	Related       *jobs.Related  // what Job refers to, with Lookup.Related
	Pipeline      *jobs.Pipeline // the pipeline asked for by Lookup.PipelineID
	Once          *Done          // the record Lookup.Once names, if any (expired or not)
	RefBuilds     int64          // the project's builds of Lookup.Ref (0 for none)
}

type pathAlias struct {
	ID int64 `db:"id"`
}

// Lookup resolves credentials, project, membership and an optional job in at
// most two sequential BatchGetItem round trips, one when the warm caches
// hold the credentials, none when they hold everything but what is read
// fresh on every request: the project, the job, the pipeline and a job
// token's job.
//
// What is read fresh: the project (its build count, visibility and
// settings), the pipeline (its job counts) and the jobs. The read is
// strongly consistent when it includes a job (a job read right after an
// action on it sees the action; a job token stops working when its job
// ends), else eventually consistent. Tokens, users, memberships and path
// aliases come from the warm caches for WarmTTL; a stale cached token or
// path still names the user or project to read in the same round trip,
// which the fresh token or project then confirms.
//
// Errors: only the DynamoDB client's; a missing item is a nil field.
func (s *Store) Lookup(ctx context.Context, l Lookup) (*Found, error) {
	lk := &lookup{s: s, l: l, f: &Found{Related: jobs.NewRelated()}, asked: map[string]bool{}, read: map[string]item{}}
	consistent := l.JobID != 0 || l.TokenProject
	for {
		wants, err := lk.wanted()
		if err != nil || len(wants) == 0 {
			return lk.f, err
		}
		// Each item once: two wants may name one (the caller's user and
		// the job's), and a want may name one read a round before.
		var keys []item
		for _, w := range wants {
			ks := keyString(w.key)
			if _, ok := lk.read[ks]; !ok {
				lk.read[ks] = nil
				keys = append(keys, w.key)
			}
		}
		if len(keys) > 0 {
			got, err := s.batchRead(ctx, keys, consistent)
			if err != nil {
				return nil, err
			}
			maps.Copy(lk.read, got)
		}
		for _, w := range wants {
			if err := w.take(lk.read[keyString(w.key)]); err != nil {
				return nil, err
			}
		}
	}
}

// want is one item a lookup reads and what it does with it (nil when the
// item does not exist).
type want struct {
	key  item
	take func(it item) error
}

// lookup is one Lookup on its way: what it knows so far and what it asked.
type lookup struct {
	s     *Store
	l     Lookup
	f     *Found
	asked map[string]bool // by purpose and key: each purpose takes its item once
	read  map[string]item // items read, by key (nil: missing)

	projectID int64                   // the request's project, once known
	projects  map[int64]*jobs.Project // projects read, by id (nil: missing), or cached
	cached    map[int64]bool          // projects taken from the warm cache (CachedProject), not read
	refBuilds map[int64]int64         // Lookup.Ref's build count read, by project id
	refReads  map[listOf]*refRead     // ref build counts being read
	hints     []int64                 // project ids a stale cache named, read early
	userID    int64                   // the token's user, from the token or a stale cached one
	jobTokJob int64                   // a job token's job, likewise
	pathRead  bool                    // the path alias item was read

	tokenDone, relatedDone bool
}

// ask adds the want of k for purpose (what take makes of it) unless it was
// asked before. One item can serve two purposes (the caller is the job's
// user, a job token's job is the job asked for), and each takes it.
func (lk *lookup) ask(wants []want, purpose string, k item, take func(item) error) []want {
	ks := purpose + "|" + keyString(k)
	if lk.asked[ks] {
		return wants
	}
	lk.asked[ks] = true
	return append(wants, want{k, take})
}

// wanted is the next round's reads: those whose keys are known now and
// that no cache answers.
func (lk *lookup) wanted() ([]want, error) {
	var wants []want
	s, l, f := lk.s, lk.l, lk.f
	if l.TokenHash != "" && !lk.tokenDone {
		if t, ok := s.warm.tokens.get(l.TokenHash); ok {
			f.Token, lk.tokenDone = t, true
		} else {
			if t, ok := s.warm.tokens.hint(l.TokenHash); ok {
				lk.userID, lk.jobTokJob = t.UserID, tokenJob(t)
				if l.TokenProject && t.IsJobToken() && l.Project.IsZero() {
					lk.hints = append(lk.hints, t.ProjectID)
				}
			}
			wants = lk.ask(wants, "token", tokenKey(l.TokenHash), lk.takeToken)
		}
	}
	if f.Token != nil {
		lk.userID, lk.jobTokJob = f.Token.UserID, tokenJob(f.Token)
	}
	wants = lk.wantProject(wants)
	wants = lk.wantIdentity(wants)
	if l.JobID != 0 {
		wants = lk.ask(wants, "job", jobKey(l.JobID), func(it item) (err error) {
			if it != nil {
				f.Job, err = decodeJob(it)
			}
			return err
		})
	}
	if l.PipelineID != 0 {
		wants = lk.ask(wants, "pipeline", pipelineKey(l.PipelineID), func(it item) error {
			if it == nil {
				return nil
			}
			f.Pipeline = &jobs.Pipeline{}
			return unmarshal(it, f.Pipeline)
		})
	}
	if l.Once != "" {
		wants = lk.ask(wants, "once", onceKey(l.Once), func(it item) (err error) {
			if it != nil {
				f.Once, err = decodeDone(it)
			}
			return err
		})
	}
	if l.JobRef && f.Job != nil && hasRef(f.Job) && lk.projectID != 0 {
		wants = lk.wantRefCount(wants, lk.projectID, f.Job.Ref)
	}
	if l.Related && f.Job != nil && !lk.relatedDone {
		lk.relatedDone = true
		rel, keys := s.cachedRelated([]*jobs.Job{f.Job})
		f.Related = rel
		for _, k := range keys {
			wants = lk.ask(wants, "related", k, func(it item) error { return s.takeRelated(rel, it) })
		}
	}
	return wants, nil
}

func (lk *lookup) takeToken(it item) error {
	lk.tokenDone = true
	if it == nil {
		return nil
	}
	t := &jobs.Token{}
	if err := unmarshal(it, t); err != nil {
		return err
	}
	lk.f.Token = t
	lk.s.warm.tokens.put(lk.l.TokenHash, t)
	return nil
}

// tokenJob is the job a job token belongs to, or 0.
func tokenJob(t *jobs.Token) int64 {
	if t.IsJobToken() {
		return t.JobID
	}
	return 0
}

// wantProject reads the project, fresh, once its id is known: from the ref,
// the path's alias or the job token. A stale cached alias (or job token)
// names a project to read early; it counts once its path (or the fresh
// token) confirms it.
func (lk *lookup) wantProject(wants []want) []want {
	s, l, f := lk.s, lk.l, lk.f
	path := strings.ToLower(l.Project.Path)
	switch {
	case l.Project.ID != 0:
		lk.projectID = l.Project.ID
	case path != "" && lk.projectID == 0:
		id, hinted := s.warm.paths.hint(path)
		if _, read := lk.projects[id]; hinted && !read && l.CachedProject {
			if p, ok := s.warm.projects.get(id); ok {
				lk.keepProject(id, p)
			}
		}
		if p := lk.projects[id]; hinted && p != nil && strings.EqualFold(p.Path, path) {
			lk.projectID = id
			break
		}
		if _, read := lk.projects[id]; hinted && id != 0 && !read {
			lk.hints = append(lk.hints, id)
			break
		}
		if lk.pathRead {
			break // no such path
		}
		wants = lk.ask(wants, "path", projectPathKey(path), func(it item) error {
			lk.pathRead = true
			var a pathAlias
			if it != nil {
				if err := unmarshal(it, &a); err != nil {
					return err
				}
			}
			lk.projectID = a.ID
			s.warm.paths.put(path, a.ID)
			return nil
		})
	case l.TokenProject && l.Project.IsZero() && f.Token != nil && f.Token.IsJobToken():
		lk.projectID = f.Token.ProjectID
	}
	for _, id := range append(lk.hints, lk.projectID) {
		if id == 0 {
			continue
		}
		if _, read := lk.projects[id]; !read {
			if p, ok := s.warm.projects.get(id); ok && l.CachedProject {
				lk.keepProject(id, p)
				if lk.cached == nil {
					lk.cached = map[int64]bool{}
				}
				lk.cached[id] = true
			} else {
				wants = lk.ask(wants, "project", projectKey(id), lk.takeProject(id))
			}
		}
		if indexedRef(l.Ref) {
			// Fresh, as the project's own count is for its deep pages.
			wants = lk.wantRefCount(wants, id, l.Ref)
		}
	}
	if p := lk.projects[lk.projectID]; p != nil {
		f.Project = p
	}
	f.RefBuilds = lk.refBuilds[lk.projectID]
	return wants
}

// refRead is a ref's build count on its way through a lookup: the counts
// in its entry and its count item as read (see refCountOf).
type refRead struct {
	entry, count         int64
	entryRead, countRead bool
	done                 bool
}

// wantRefCount reads the count of ref's builds in project id: from its
// count item while where the project keeps it is not known (as it is for
// every project stored or resharded since counts moved apart), and its
// entry too when the project, once read, keeps it there. A project cached
// as keeping them apart still does (counts never move back); one cached
// as keeping them in its entries may have moved them since (a reshard), so
// both places are read then, as while they move. Once read it is kept
// (keepRefBuilds).
func (lk *lookup) wantRefCount(wants []want, id int64, ref string) []want {
	k := listOf{id, ref}
	if lk.refReads == nil {
		lk.refReads = map[listOf]*refRead{}
	}
	r := lk.refReads[k]
	if r == nil {
		r = &refRead{}
		lk.refReads[k] = r
	}
	if r.done {
		return wants
	}
	mode, known := refsApart, false
	p, read := lk.projects[id]
	fresh := read && !lk.cached[id]
	if !read {
		p, read = lk.s.warm.projects.get(id)
	}
	switch {
	case fresh:
		if p != nil {
			mode = p.RefCounts
		}
		known = true
	case read: // as cached
		known = true
		if p.RefCounts != refsApart {
			mode = refsMoving
		}
	}
	entry := mode != refsApart
	if mode != refsTogether && !r.countRead {
		wants = lk.ask(wants, "ref count", refCountKey(id, ref), func(it item) (err error) {
			r.count, err = countIn(it)
			r.countRead = true
			return err
		})
	}
	if entry && !r.entryRead {
		wants = lk.ask(wants, "ref entry", refEntryKey(id, ref), func(it item) (err error) {
			r.entry, err = countIn(it)
			r.entryRead = true
			return err
		})
	}
	if !known || (mode != refsTogether && !r.countRead) || (mode != refsApart && !r.entryRead) {
		return wants
	}
	r.done = true
	lk.keepRefBuilds(id, ref, refCountOf(mode, r.entry, r.count).n)
	return wants
}

// keepRefBuilds keeps n, the count of ref's builds in project id (0 when no
// build of it was counted): Lookup.Ref's in Found, any in the warm cache.
func (lk *lookup) keepRefBuilds(id int64, ref string, n int64) {
	lk.s.warm.builds.put(listOf{id, ref}, buildsHint{count: n})
	if ref != lk.l.Ref {
		return
	}
	if lk.refBuilds == nil {
		lk.refBuilds = map[int64]int64{}
	}
	lk.refBuilds[id] = n
}

// takeProject keeps project id as read (nil when missing).
func (lk *lookup) takeProject(id int64) func(item) error {
	return func(it item) error {
		if it == nil {
			lk.keepProject(id, nil)
			return nil
		}
		p := &jobs.Project{}
		if err := unmarshal(it, p); err != nil {
			return err
		}
		h := buildsHint{p.Builds, layoutsOf(p), p.RankCounts}
		lk.s.warm.builds.put(listOf{p.ID, ""}, h)
		lk.s.counts.tell(p.ID, h)
		lk.s.warm.projects.put(p.ID, p)
		lk.keepProject(id, p)
		return nil
	}
}

// keepProject records project id as found (nil: missing).
func (lk *lookup) keepProject(id int64, p *jobs.Project) {
	if lk.projects == nil {
		lk.projects = map[int64]*jobs.Project{}
	}
	lk.projects[id] = p
	if p != nil && id == lk.projectID {
		lk.f.Project = p
	}
}

// wantIdentity reads the token's user, its membership in the project and a
// job token's job, the first two unless the warm caches hold them.
func (lk *lookup) wantIdentity(wants []want) []want {
	s, f := lk.s, lk.f
	if lk.userID == 0 {
		return wants
	}
	uid := lk.userID
	if u, ok := s.warm.users.get(uid); ok {
		f.User = u
	} else {
		wants = lk.ask(wants, "user", userKey(uid), func(it item) error {
			if it == nil {
				return nil
			}
			u := &jobs.User{}
			if err := unmarshal(it, u); err != nil {
				return err
			}
			u.Doc = compactDoc(u.Doc)
			f.User = u
			s.warm.users.put(uid, u)
			return nil
		})
	}
	if pid := lk.projectID; pid != 0 {
		if a, ok := s.warm.members.get([2]int64{pid, uid}); ok {
			f.Access = a
		} else {
			wants = lk.ask(wants, "member", memberKey(pid, uid), func(it item) error {
				var m member
				if it != nil {
					if err := unmarshal(it, &m); err != nil {
						return err
					}
				}
				f.Access = m.Access
				s.warm.members.put([2]int64{pid, uid}, m.Access)
				return nil
			})
		}
	}
	if jid := lk.jobTokJob; jid != 0 {
		wants = lk.ask(wants, "token job", jobKey(jid), func(it item) (err error) {
			if it != nil {
				f.TokenJob, err = decodeJob(it)
			}
			return err
		})
	}
	return wants
}

type member struct {
	UserID int64 `db:"u"`
	Access int   `db:"lvl"`
}
