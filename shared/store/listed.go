package store

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// A job item keeps what a list page reads in one binary attribute, L,
// instead of thirty: the SDK decodes one value per item instead of a map of
// attributes, each its own allocations (most of a page's CPU), and the
// list indexes project L only, so an index entry has no attribute names
// and no other index's keys (a 20-job page of finished demo jobs is about
// 3 KB: half a read unit). The
// other attributes (conditions, marks, variables, keys) stay apart; the
// ordinals are in L and apart too (index sort keys).
const listedAttr = "L"

// listedNames are the attributes L replaces: written into L, not apart.
// Items written before L keep them and decode as they did.
var listedNames = []string{"id", "pr", "pl", "k", "st", "sg", "n", "rf", "tg", "cv", "af", "ca", "qa", "sa", "fa",
	"ea", "du", "qd", "u", "ru", "rm", "fr", "ar", "arf", "ax", "arc", "tl", "dp", "x", "wu"}

// listedVersion is L's first byte: a reader refuses a layout it does not
// know instead of misreading it. Version 1 had no words (below); its items
// still decode.
const listedVersion = 2

// listedWords are strings most jobs hold (GitLab's statuses, kinds,
// failure reasons, default stage names, artifact types, file names and
// formats): L writes one of them as its index, one byte, instead of its
// length and bytes, which keeps a finished job's index entry, and so a
// page, about 90 bytes smaller (a 20-job page of finished jobs fits 4 KB:
// half a read unit). The list is part of version 2: it never changes; a
// new list is a new version.
var listedWords = []string{
	"created", "waiting_for_resource", "preparing", "pending", "running", "success", "failed", "canceled",
	"skipped", "manual", "scheduled", "waiting_for_callback", "canceling",
	"build", "bridge",
	"test", "deploy", ".pre", ".post", "lint", "review", "release", "staging", "production",
	"script_failure", "runner_system_failure", "stuck_or_timeout_failure", "unknown_failure", "api_failure",
	"missing_dependency_failure", "job_execution_timeout", "archived_failure", "unmet_prerequisites",
	"scheduler_failure", "data_integrity_failure", "runner_unsupported", "downstream_pipeline_creation_failed",
	"archive", "metadata", "trace", "junit", "sast", "dependency_scanning", "container_scanning", "dast",
	"codequality", "license_scanning", "performance", "metrics", "dotenv", "cobertura", "terraform",
	"artifacts.zip", "metadata.gz", "job.log", "junit.xml.gz", "gl-sast-report.json", "gl-code-quality-report.json",
	"cobertura-coverage.xml.gz", "zip", "gzip", "raw",
	"main", "master", "develop", "docker", "linux",
}

// listedWord is each word's index.
var listedWord = func() map[string]uint64 {
	m := make(map[string]uint64, len(listedWords))
	for i, w := range listedWords {
		m[w] = uint64(i)
	}
	return m
}()

// Presence and boolean bits of L's flags.
const (
	fTag = 1 << iota
	fAllowFailure
	fArchived
	fQueued
	fStarted
	fFinished
	fErased
	fExpire
	fCoverage
	fDuration
	fQueuedDuration
	fRunnerManager
	fExtra
	fArtifactsFile
)

// packListed writes j's listed fields: the version, the flags, then each
// field in a fixed order, integers as varints, strings and documents length
// first, times as seconds and nanoseconds, floats as their bits.
func packListed(j *jobs.Job) []byte {
	var flags uint64
	set := func(bit uint64, on bool) {
		if on {
			flags |= bit
		}
	}
	set(fTag, j.Tag)
	set(fAllowFailure, j.AllowFailure)
	set(fArchived, j.Archived)
	set(fQueued, j.QueuedAt != nil)
	set(fStarted, j.StartedAt != nil)
	set(fFinished, j.FinishedAt != nil)
	set(fErased, j.ErasedAt != nil)
	set(fExpire, j.ArtifactsExpireAt != nil)
	set(fCoverage, j.Coverage != nil)
	set(fDuration, j.Duration != nil)
	set(fQueuedDuration, j.QueuedDuration != nil)
	set(fRunnerManager, len(j.RunnerManager) > 0)
	set(fExtra, len(j.Extra) > 0)
	set(fArtifactsFile, j.ArtifactsFile != nil)

	b := make([]byte, 0, 160+len(j.Name)+len(j.Ref)+len(j.WebURL)+len(j.RunnerManager)+len(j.Extra))
	b = append(b, listedVersion)
	b = binary.AppendUvarint(b, flags)
	for _, n := range []int64{j.ID, j.ProjectID, j.PipelineID, j.UserID, j.RunnerID, j.DownstreamPipelineID, j.Ordinal, j.RefOrdinal} {
		b = binary.AppendVarint(b, n)
	}
	for _, s := range []string{string(j.Kind), string(j.Status), j.Stage, j.Name, j.Ref, j.FailureReason, j.WebURL} {
		b = appendWord(b, s)
	}
	b = appendTime(b, j.CreatedAt)
	for _, t := range []*time.Time{j.QueuedAt, j.StartedAt, j.FinishedAt, j.ErasedAt, j.ArtifactsExpireAt} {
		if t != nil {
			b = appendTime(b, *t)
		}
	}
	for _, f := range []*float64{j.Coverage, j.Duration, j.QueuedDuration} {
		if f != nil {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(*f))
		}
	}
	if len(j.RunnerManager) > 0 {
		b = appendStr(b, string(j.RunnerManager))
	}
	if len(j.Extra) > 0 {
		b = appendStr(b, string(j.Extra))
	}
	if f := j.ArtifactsFile; f != nil {
		b = appendWord(b, f.Filename)
		b = binary.AppendVarint(b, f.Size)
	}
	b = binary.AppendUvarint(b, uint64(len(j.TagList)))
	for _, t := range j.TagList {
		b = appendWord(b, t)
	}
	b = binary.AppendUvarint(b, uint64(len(j.Artifacts)))
	for _, a := range j.Artifacts {
		b = appendWord(b, a.FileType)
		b = appendWord(b, a.Filename)
		b = appendWord(b, a.FileFormat)
		if a.Size == nil {
			b = append(b, 0)
		} else {
			b = append(b, 1)
			b = binary.AppendVarint(b, *a.Size)
		}
	}
	return b
}

// appendWord writes s as a word's index, or as len(listedWords) + its
// length and its bytes.
func appendWord(b []byte, s string) []byte {
	if i, ok := listedWord[s]; ok {
		return binary.AppendUvarint(b, i)
	}
	b = binary.AppendUvarint(b, uint64(len(listedWords)+len(s)))
	return append(b, s...)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// errListed: an L that packListed did not write.
var errListed = errors.New("malformed listed attribute")

// listedReader reads L. Its strings are cut from one string copy of L, and
// its documents are slices of L: a job costs a handful of allocations.
type listedReader struct {
	b     []byte
	s     string // b as a string, for the strings cut from it
	off   int
	err   error
	words bool // strings are written by appendWord (version 2)
}

func (r *listedReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail()
		return 0
	}
	r.off += n
	return v
}

// varint undoes binary.AppendVarint's zig-zag over a uvarint.
func (r *listedReader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (r *listedReader) byte() byte {
	if r.off >= len(r.b) {
		r.fail()
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

// span returns the bounds of the next length-prefixed value.
func (r *listedReader) span() (int, int) { return r.spanOf(r.uvarint()) }

// spanOf returns the bounds of the next n bytes.
func (r *listedReader) spanOf(n uint64) (int, int) {
	if r.err != nil || n > uint64(len(r.b)-r.off) {
		r.fail()
		return 0, 0
	}
	start := r.off
	r.off += int(n)
	return start, r.off
}

func (r *listedReader) str() string {
	if !r.words {
		i, k := r.span()
		return r.s[i:k]
	}
	n := r.uvarint()
	if n < uint64(len(listedWords)) {
		return listedWords[n]
	}
	i, k := r.spanOf(n - uint64(len(listedWords)))
	return r.s[i:k]
}

// doc is the next length-prefixed value as a document: L's own bytes.
func (r *listedReader) doc() []byte {
	i, k := r.span()
	return r.b[i:k:k]
}

func (r *listedReader) time() time.Time {
	sec := r.varint()
	nsec := r.uvarint()
	if nsec >= 1e9 {
		r.fail()
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (r *listedReader) float() float64 {
	if len(r.b)-r.off < 8 {
		r.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b[r.off:]))
	r.off += 8
	return v
}

// count is the next list's length, bounded by the bytes left (every element
// takes at least one): a corrupt count cannot make a huge allocation.
func (r *listedReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)-r.off) {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *listedReader) fail() {
	if r.err == nil {
		r.err = errListed
	}
	r.off = len(r.b)
}

// unpackListed sets j's listed fields from L.
func unpackListed(b []byte, j *jobs.Job) error {
	if len(b) == 0 || b[0] != 1 && b[0] != listedVersion {
		return errListed
	}
	r := &listedReader{b: b, s: string(b), off: 1, words: b[0] == listedVersion}
	flags := r.uvarint()
	has := func(bit uint64) bool { return flags&bit != 0 }
	for _, n := range []*int64{&j.ID, &j.ProjectID, &j.PipelineID, &j.UserID, &j.RunnerID, &j.DownstreamPipelineID, &j.Ordinal, &j.RefOrdinal} {
		*n = r.varint()
	}
	j.Kind, j.Status = jobs.Kind(r.str()), jobs.Status(r.str())
	j.Stage, j.Name, j.Ref, j.FailureReason, j.WebURL = r.str(), r.str(), r.str(), r.str(), r.str()
	j.Tag, j.AllowFailure, j.Archived = has(fTag), has(fAllowFailure), has(fArchived)
	j.CreatedAt = r.time()
	// The optional times and numbers share one allocation.
	var opt *struct {
		t [5]time.Time
		f [3]float64
	}
	if flags&(fQueued|fStarted|fFinished|fErased|fExpire|fCoverage|fDuration|fQueuedDuration) != 0 {
		opt = &struct {
			t [5]time.Time
			f [3]float64
		}{}
	}
	for i, f := range []struct {
		bit uint64
		dst **time.Time
	}{{fQueued, &j.QueuedAt}, {fStarted, &j.StartedAt}, {fFinished, &j.FinishedAt}, {fErased, &j.ErasedAt}, {fExpire, &j.ArtifactsExpireAt}} {
		if has(f.bit) {
			opt.t[i] = r.time()
			*f.dst = &opt.t[i]
		}
	}
	for i, f := range []struct {
		bit uint64
		dst **float64
	}{{fCoverage, &j.Coverage}, {fDuration, &j.Duration}, {fQueuedDuration, &j.QueuedDuration}} {
		if has(f.bit) {
			opt.f[i] = r.float()
			*f.dst = &opt.f[i]
		}
	}
	if has(fRunnerManager) {
		j.RunnerManager = r.doc()
	}
	if has(fExtra) {
		j.Extra = r.doc()
	}
	if has(fArtifactsFile) {
		j.ArtifactsFile = &jobs.ArtifactsFile{Filename: r.str(), Size: r.varint()}
	}
	if n := r.count(); n > 0 {
		j.TagList = make([]string, n)
		for i := range j.TagList {
			j.TagList[i] = r.str()
		}
	}
	if n := r.count(); n > 0 {
		j.Artifacts = make([]jobs.Artifact, n)
		for i := range j.Artifacts {
			a := &j.Artifacts[i]
			a.FileType, a.Filename, a.FileFormat = r.str(), r.str(), r.str()
			switch r.byte() {
			case 1:
				size := r.varint()
				a.Size = &size
			case 0:
			default:
				r.fail()
			}
		}
	}
	if r.err == nil && r.off != len(b) {
		r.err = errListed // trailing bytes: not what packListed wrote
	}
	return r.err
}
