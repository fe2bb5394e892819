package render

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// AppendJob appends the Job entity of j to dst, byte for byte what
// Marshal(NewJob(j, p, rel, now), j.Extra) writes, without reflection and
// without re-compacting documents that are already compact
// (TestAppendMatchesMarshal holds them equal).
func AppendJob(dst []byte, j *jobs.Job, p *jobs.Project, rel *jobs.Related, now time.Time) ([]byte, error) {
	dst, err := appendBasic(dst, j, p, rel, now)
	if err != nil {
		return nil, err
	}
	if f := j.ArtifactsFile; f != nil {
		dst = append(dst, `,"artifacts_file":{"filename":`...)
		dst = appendString(dst, f.Filename)
		dst = append(dst, `,"size":`...)
		dst = strconv.AppendInt(dst, f.Size, 10)
		dst = append(dst, '}')
	}
	dst = append(dst, `,"artifacts":[`...)
	for i, a := range j.Artifacts {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"file_type":`...)
		dst = appendString(dst, a.FileType)
		dst = append(dst, `,"size":`...)
		if a.Size == nil {
			dst = append(dst, "null"...)
		} else {
			dst = strconv.AppendInt(dst, *a.Size, 10)
		}
		dst = append(dst, `,"filename":`...)
		dst = appendString(dst, a.Filename)
		dst = append(dst, `,"file_format":`...)
		dst = appendString(dst, a.FileFormat)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"runner":`...)
	var runner json.RawMessage
	if r := rel.Runners[j.RunnerID]; r != nil {
		runner = r.Doc
	}
	if dst, err = appendDoc(dst, runner); err != nil {
		return nil, err
	}
	if !j.IsBridge() {
		dst = append(dst, `,"runner_manager":`...)
		if dst, err = appendDoc(dst, j.RunnerManager); err != nil {
			return nil, err
		}
	}
	dst = append(dst, `,"artifacts_expire_at":`...)
	dst = appendTime(dst, j.ArtifactsExpireAt)
	dst = append(dst, `,"archived":`...)
	dst = strconv.AppendBool(dst, j.Archived)
	dst = append(dst, `,"tag_list":[`...)
	for i, tag := range j.TagList {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, tag)
	}
	dst = append(dst, ']')
	return appendExtra(dst, j.Extra), nil
}

// AppendBridge appends the Bridge entity of j, as Marshal(NewBridge(...),
// j.Extra) writes it.
func AppendBridge(dst []byte, j *jobs.Job, p *jobs.Project, rel *jobs.Related, now time.Time) ([]byte, error) {
	dst, err := appendBasic(dst, j, p, rel, now)
	if err != nil {
		return nil, err
	}
	dst = append(dst, `,"downstream_pipeline":`...)
	var down json.RawMessage
	if d := rel.Pipelines[j.DownstreamPipelineID]; d != nil {
		down = d.Doc
	}
	if dst, err = appendDoc(dst, down); err != nil {
		return nil, err
	}
	return appendExtra(dst, j.Extra), nil
}

// appendBasic appends the JobBasic fields, opening the object and leaving
// it open.
func appendBasic(dst []byte, j *jobs.Job, p *jobs.Project, rel *jobs.Related, now time.Time) ([]byte, error) {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, j.ID, 10)
	dst = append(dst, `,"status":`...)
	dst = appendString(dst, string(j.Status))
	dst = append(dst, `,"stage":`...)
	dst = appendString(dst, j.Stage)
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, j.Name)
	dst = append(dst, `,"ref":`...)
	dst = appendString(dst, j.Ref)
	dst = append(dst, `,"tag":`...)
	dst = strconv.AppendBool(dst, j.Tag)
	dst = append(dst, `,"coverage":`...)
	dst = appendFloat(dst, j.Coverage)
	dst = append(dst, `,"allow_failure":`...)
	dst = strconv.AppendBool(dst, j.AllowFailure)
	dst = append(dst, `,"created_at":`...)
	dst = appendTime(dst, &j.CreatedAt)
	dst = append(dst, `,"started_at":`...)
	dst = appendTime(dst, j.StartedAt)
	dst = append(dst, `,"finished_at":`...)
	dst = appendTime(dst, j.FinishedAt)
	dst = append(dst, `,"erased_at":`...)
	dst = appendTime(dst, j.ErasedAt)
	duration, queued := j.Durations(now)
	dst = append(dst, `,"duration":`...)
	dst = appendFloat(dst, duration)
	dst = append(dst, `,"queued_duration":`...)
	dst = appendFloat(dst, queued)
	var user, commit, pipeline json.RawMessage
	if u := rel.Users[j.UserID]; u != nil {
		user = u.Doc
	}
	if pl := rel.Pipelines[j.PipelineID]; pl != nil {
		pipeline, commit = pl.Doc, pl.Commit
	}
	var err error
	for _, f := range []struct {
		name string
		doc  json.RawMessage
	}{{`,"user":`, user}, {`,"commit":`, commit}, {`,"pipeline":`, pipeline}} {
		dst = append(dst, f.name...)
		if dst, err = appendDoc(dst, f.doc); err != nil {
			return nil, err
		}
	}
	if j.Status == jobs.Failed {
		reason := j.FailureReason
		if reason == "" {
			reason = "unknown_failure"
		}
		dst = append(dst, `,"failure_reason":`...)
		dst = appendString(dst, reason)
	}
	dst = append(dst, `,"web_url":`...)
	dst = appendString(dst, JobWebURL(p, j))
	dst = append(dst, `,"project":{"ci_job_token_scope_enabled":`...)
	dst = strconv.AppendBool(dst, p.JobTokenScopeEnabled)
	return append(dst, '}'), nil
}

// appendExtra closes the object, after the pass-through fields as Marshal
// splices them in.
func appendExtra(dst []byte, extra json.RawMessage) []byte {
	if len(extra) <= 2 {
		return append(dst, '}')
	}
	extra = bytes.TrimSpace(extra)
	return append(append(dst, ','), extra[1:]...)
}

// appendDoc appends a stored JSON document as json.Marshal writes a
// json.RawMessage: compacted, with <, >, & and U+2028/2029 escaped; as is
// when it needs neither (documents are stored compact), else through
// json.Marshal. Empty is null.
func appendDoc(dst []byte, doc json.RawMessage) ([]byte, error) {
	if len(doc) == 0 {
		return append(dst, "null"...), nil
	}
	if compactSafe(doc) {
		return append(dst, doc...), nil
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

// compactSafe reports whether json.Marshal would write doc unchanged: no
// whitespace between tokens, nothing in strings it escapes (0xE2 may begin
// U+2028 or U+2029: those take the slow path whatever they are). Every
// cached document passes here on every page, so strings' bytes are skipped
// by table, not by a switch.
func compactSafe(doc []byte) bool {
	for i := 0; i < len(doc); i++ {
		switch c := doc[i]; {
		case c == '"':
			// Skip the string's plain bytes, then judge the one that
			// stopped the scan: its end, an escape, or one Marshal
			// rewrites.
			for i++; ; i++ {
				for i < len(doc) && !stringStop[doc[i]] {
					i++
				}
				if i >= len(doc) {
					return false // unterminated
				}
				if c := doc[i]; c == '"' {
					break
				} else if c != '\\' {
					return false
				}
				i++ // the escaped byte
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return false
		}
	}
	return true
}

// stringStop marks the bytes that end compactSafe's run through a string.
var stringStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	for _, c := range []byte{'"', '\\', '<', '>', '&', 0xE2} {
		t[c] = true
	}
	return t
}()

// appendTime writes t quoted in TimeFormat, digit by digit: a page writes
// five times a job, and AppendFormat parses its layout every time.
func appendTime(dst []byte, t *time.Time) []byte {
	if t == nil {
		return append(dst, "null"...)
	}
	u := t.UTC()
	y, mo, d := u.Date()
	if y < 0 || y > 9999 {
		dst = append(dst, '"')
		dst = u.AppendFormat(dst, TimeFormat)
		return append(dst, '"')
	}
	h, mi, s := u.Clock()
	ms := u.Nanosecond() / 1e6
	two := func(dst []byte, n int) []byte { return append(dst, byte('0'+n/10), byte('0'+n%10)) }
	dst = append(dst, '"', byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-')
	dst = append(two(dst, int(mo)), '-')
	dst = append(two(dst, d), 'T')
	dst = append(two(dst, h), ':')
	dst = append(two(dst, mi), ':')
	dst = append(two(dst, s), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z', '"')
	return dst
}

// appendFloat writes f as encoding/json does (null for nil).
func appendFloat(dst []byte, f *float64) []byte {
	if f == nil {
		return append(dst, "null"...)
	}
	v := *f
	format := byte('f')
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, v, format, -1, 64)
	if format == 'e' {
		// encoding/json writes e-09 as e-9.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hex = "0123456789abcdef"

// appendString writes s as a JSON string as encoding/json does, HTML
// characters escaped.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
