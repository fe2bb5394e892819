package store

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// Related reads everything js refers to: users, runners and pipelines'
// documents from the warm caches, the rest in one eventually consistent
// BatchGetItem round trip, each shared item once however many jobs name it.
// What it returns is shared with the caches: read only.
//
// Errors: only the DynamoDB client's.
func (s *Store) Related(ctx context.Context, js ...*jobs.Job) (*jobs.Related, error) {
	rel, keys := s.cachedRelated(js)
	if len(keys) == 0 {
		return rel, nil
	}
	got, err := s.batchRead(ctx, keys, false)
	if err != nil {
		return nil, err
	}
	for _, it := range got {
		if err := s.takeRelated(rel, it); err != nil {
			return nil, err
		}
	}
	return rel, nil
}

// cachedRelated is what the warm caches hold of what js refer to, and the
// keys of the rest.
func (s *Store) cachedRelated(js []*jobs.Job) (*jobs.Related, []item) {
	rel := jobs.NewRelated()
	var keys []item
	seen := map[string]bool{}
	miss := func(k item) {
		if ks := keyString(k); !seen[ks] {
			seen[ks] = true
			keys = append(keys, k)
		}
	}
	pipeline := func(id int64) {
		if _, ok := rel.Pipelines[id]; ok {
			return
		}
		if pl, ok := s.warm.pipelines.get(id); ok {
			rel.Pipelines[id] = pl
		} else {
			miss(pipelineKey(id))
		}
	}
	for _, j := range js {
		if id := j.UserID; id != 0 && rel.Users[id] == nil {
			if u, ok := s.warm.users.get(id); ok {
				rel.Users[id] = u
			} else {
				miss(userKey(id))
			}
		}
		if id := j.RunnerID; id != 0 && rel.Runners[id] == nil {
			if r, ok := s.warm.runners.get(id); ok {
				rel.Runners[id] = r
			} else {
				miss(runnerKey(id))
			}
		}
		pipeline(j.PipelineID)
		if j.DownstreamPipelineID != 0 {
			pipeline(j.DownstreamPipelineID)
		}
	}
	return rel, keys
}

// takeRelated adds a user, pipeline or runner item read to rel and to the
// warm caches; nil (a missing item) adds nothing.
func (s *Store) takeRelated(rel *jobs.Related, it item) error {
	ks := keyString(it)
	switch {
	case it == nil:
	case strings.HasPrefix(ks, "U#"):
		u := &jobs.User{}
		if err := unmarshal(it, u); err != nil {
			return err
		}
		u.Doc = compactDoc(u.Doc)
		rel.Users[u.ID] = u
		s.warm.users.put(u.ID, u)
	case strings.HasPrefix(ks, "PL#"):
		p := &jobs.Pipeline{}
		if err := unmarshal(it, p); err != nil {
			return err
		}
		p.Doc, p.Commit = compactDoc(p.Doc), compactDoc(p.Commit)
		rel.Pipelines[p.ID] = p
		s.warm.pipelines.put(p.ID, p)
	case strings.HasPrefix(ks, "R#"):
		r := &jobs.Runner{}
		if err := unmarshal(it, r); err != nil {
			return err
		}
		r.Doc = compactDoc(r.Doc)
		rel.Runners[r.ID] = r
		s.warm.runners.put(r.ID, r)
	}
	return nil
}

// compactDoc is a document as json.Marshal writes it (compact, HTML
// characters escaped), once per read rather than once per page rendered:
// the renderer then copies it as it is. A document that is not JSON stays
// as stored, for the renderer to fail on as before.
func compactDoc(doc json.RawMessage) json.RawMessage {
	if len(doc) == 0 {
		return doc
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return doc
	}
	return out
}
