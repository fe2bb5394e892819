package api

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/files"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

const (
	// archiveURLTTL is how long a presigned download stays valid: long
	// enough for a client to follow the redirect, no longer.
	archiveURLTTL = 5 * time.Minute
	// maxInlineEntry is the largest encoded body a single file is served
	// in: a Lambda response holds 6 MB, base64 or JSON escaping included.
	maxInlineEntry = 5 << 20
)

var (
	// errFileNotFound is not_found! with no resource: no archive row or file.
	errFileNotFound = message(http.StatusNotFound, "404 Not Found")
	errBadPath      = message(http.StatusBadRequest, "400 Bad request")
)

// getJobArtifacts serves GET /projects/:id/jobs/:job_id/artifacts: a 302 to
// the zip in S3 (expiry is not checked, as on GitLab).
func getJobArtifacts(w http.ResponseWriter, rq *request) error {
	p, j, err := rq.artifactsBuild()
	if err != nil {
		return err
	}
	return rq.redirectToArchive(w, p, j)
}

// getJobArtifactFile serves GET /projects/:id/jobs/:job_id/artifacts/*path:
// one entry of the zip, read with ranged GETs, its type from its extension.
func getJobArtifactFile(w http.ResponseWriter, rq *request) error {
	p, j, err := rq.artifactsBuild()
	if err != nil {
		return err
	}
	if !j.ArtifactsAvailable(rq.deps.Now()) {
		return errFileNotFound
	}
	name := rq.params["artifact_path"]
	if !validArtifactPath(name) {
		return errBadPath
	}
	return rq.serveEntry(w, p, j, name, false)
}

// getRefArtifacts serves both by-ref routes, which API Gateway can only
// route as one (the ref holds slashes, so one greedy variable takes ref
// and suffix): GET /projects/:id/jobs/artifacts/:ref_name/download?job=
// (the zip) and …/:ref_name/raw/*artifact_path?job= (one entry, its type
// sniffed). The job is found with one Query: of the newest successful
// pipeline, or with search_recent_successful_pipelines of the newest one
// that has such a job.
func getRefArtifacts(w http.ResponseWriter, rq *request) error {
	ref, name, raw, ok := splitRefPath(rq.params["ref_path"])
	if !ok {
		return errRouteNotFound
	}
	q := rq.URL.Query()
	jobName, given := q["job"]
	if !given {
		return grape(http.StatusBadRequest, "job is missing")
	}
	search, err := (&postParams{query: pairs(rq.URL.RawQuery)}).boolean("search_recent_successful_pipelines")
	if err != nil {
		return err
	}
	p, err := rq.buildsProject()
	if err != nil {
		return err
	}
	find := rq.deps.Store.LatestRefBuild
	if search {
		find = rq.deps.Store.SearchRefBuild
	}
	j, err := find(rq.ctx(), p.ID, ref, jobName[0])
	if errors.Is(err, store.ErrNotFound) && search {
		return errJobNotFound
	}
	if err != nil {
		return err
	}
	if !rq.caller.CanReadArtifacts(p, j) {
		return errForbidden
	}
	if !raw {
		return rq.redirectToArchive(w, p, j)
	}
	if !validArtifactPath(name) {
		return errBadPath
	}
	if !j.HasArchiveRow() {
		return errFileNotFound
	}
	return rq.serveEntry(w, p, j, name, true)
}

// splitRefPath parses what follows jobs/artifacts/ as Grape's routes
// would, the download route first: "<ref>/download", or "<ref>/raw/<path>"
// where the ref (matched by .+, greedily) ends at the last "/raw/".
func splitRefPath(rest string) (ref, name string, raw, ok bool) {
	if ref, ok := strings.CutSuffix(rest, "/download"); ok && ref != "" {
		return ref, "", false, true
	}
	i := strings.LastIndex(rest, "/raw/")
	if i <= 0 || i+len("/raw/") == len(rest) {
		return "", "", false, false
	}
	return rest[:i], rest[i+len("/raw/"):], true, true
}

// artifactsBuild is the common order of checks of the artifacts GETs: the
// project (404), read_build (403), the job (404), read_job_artifacts (403).
func (rq *request) artifactsBuild() (*jobs.Project, *jobs.Job, error) {
	p, j, err := rq.readableBuild()
	if err != nil {
		return nil, nil, err
	}
	if !rq.caller.CanReadArtifacts(p, j) {
		return nil, nil, errForbidden
	}
	return p, j, nil
}

// validArtifactPath is lib/gitlab/ci/build/artifacts/path.rb: UTF-8
// without NUL bytes.
func validArtifactPath(p string) bool { return utf8.ValidString(p) && !strings.ContainsRune(p, 0) }

// redirectToArchive sends the client to S3 for the zip: a presigned URL of
// that object and method only, answering with GitLab's headers for it. The
// archive never passes through the function, whatever its size.
func (rq *request) redirectToArchive(w http.ResponseWriter, p *jobs.Project, j *jobs.Job) error {
	if !j.HasArchiveRow() || j.Archive == nil {
		return errFileNotFound
	}
	d := files.Download{ContentType: "application/octet-stream", ContentDisposition: attachment(j.ArchiveName())}
	url, err := rq.deps.Files.ArchiveURL(rq.ctx(), p.ID, j.ID, d, rq.Method == http.MethodHead, archiveURLTTL)
	if err != nil {
		return err
	}
	redirect(w, url)
	return nil
}

// redirect answers 302 to url with no body: the client reads the one S3
// sends (the presigned URL differs on every request, so a body naming it
// would too).
func redirect(w http.ResponseWriter, url string) {
	w.Header().Set("Location", url)
	w.WriteHeader(http.StatusFound)
}

// attachment is Rails' Content-Disposition for send_file: an ASCII
// filename (others as ?) and the UTF-8 one percent-encoded (RFC 5987).
func attachment(name string) string {
	var ascii, ext strings.Builder
	for _, r := range name {
		switch {
		case r == '"' || r == '\\':
			ascii.WriteString(`\` + string(r))
		case r < 0x20 || r > 0x7e:
			ascii.WriteByte('?')
		default:
			ascii.WriteRune(r)
		}
	}
	for _, b := range []byte(name) {
		if b < 0x80 && (b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("!#$&+.^_`|~-", b) >= 0) {
			ext.WriteByte(b)
		} else {
			fmt.Fprintf(&ext, "%%%02X", b)
		}
	}
	return `attachment; filename="` + ascii.String() + `"; filename*=UTF-8''` + ext.String()
}

// Workhorse's own answers on the single-file routes: plain text, not JSON.
var (
	errEntryNotFound = &Error{Status: http.StatusNotFound, Body: plainText("404 page not found\n")}
	errNotAZip       = &Error{Status: http.StatusInternalServerError, Body: plainText("Internal Server Error\n")}
)

// serveEntry answers with one entry of the job's zip, found by its exact
// name (case-sensitive, no normalisation) as gitlab-zip-cat does, reading
// only the zip's tail, its directory and the entry.
func (rq *request) serveEntry(w http.ResponseWriter, p *jobs.Project, j *jobs.Job, name string, sniff bool) error {
	if j.Archive == nil {
		return errEntryNotFound
	}
	ra, err := rq.deps.Files.OpenArchive(rq.ctx(), p.ID, j.ID)
	if errors.Is(err, files.ErrNoObject) {
		return errEntryNotFound
	}
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(ra, ra.Size())
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		rq.deps.Log.Warn("artifacts archive is not a zip", "job", j.ID, "error", err.Error())
		return errNotAZip
	}
	var f *zip.File
	for _, e := range zr.File {
		if e.Name == name {
			f = e
			break
		}
	}
	if f == nil {
		return errEntryNotFound
	}
	if f.UncompressedSize64 > maxInlineEntry {
		return rq.redirectToEntry(w, j, f, ra, sniff)
	}
	// One GET for the local header and the data: the header's name and
	// extra field are those of the directory, give or take.
	ra.Hint(int64(30+len(f.Name)+len(f.Extra)+256) + int64(f.CompressedSize64))
	rc, err := f.Open()
	if err != nil {
		return entryError(rq, j, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return entryError(rq, j, err)
	}
	if encodedSize(data) > maxInlineEntry {
		return rq.redirectToEntry(w, j, f, ra, sniff)
	}
	h := w.Header()
	h.Set("Content-Type", entryType(f.Name, data, sniff))
	h.Set("Content-Disposition", entryDisposition(f.Name))
	// GitLab ignores Range on single files; ours honours it (206), on the
	// decoded entry.
	http.ServeContent(w, rq.Request, "", time.Time{}, bytes.NewReader(data))
	return nil
}

// redirectToEntry serves an entry too big for a Lambda response: decoded
// into a copy of its own in S3 and the client sent there, with the headers
// the entry would have had. The copy costs the entry's size in time, once
// per request; the archive is still read in ranges.
func (rq *request) redirectToEntry(w http.ResponseWriter, j *jobs.Job, f *zip.File, ra files.Archive, sniff bool) error {
	ra.Hint(0)
	rc, err := f.Open()
	if err != nil {
		return entryError(rq, j, err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 4096)
	head, err := br.Peek(4096)
	if err != nil && !errors.Is(err, io.EOF) {
		return entryError(rq, j, err)
	}
	d := files.Download{ContentType: entryType(f.Name, head, sniff), ContentDisposition: entryDisposition(f.Name)}
	url, err := rq.deps.Files.TempURL(rq.ctx(), br, d, archiveURLTTL)
	if err != nil {
		return entryError(rq, j, err)
	}
	redirect(w, url)
	return nil
}

func entryDisposition(name string) string {
	return `attachment; filename="` + quoteEscaper.Replace(path.Base(name)) + `"`
}

// entryError: a damaged entry (bad checksum, unknown method) is Workhorse's
// 500; S3 failing is ours.
func entryError(rq *request, j *jobs.Job, err error) error {
	if errors.Is(err, zip.ErrChecksum) || errors.Is(err, zip.ErrAlgorithm) || errors.Is(err, zip.ErrFormat) ||
		errors.Is(err, io.ErrUnexpectedEOF) || strings.HasPrefix(err.Error(), "flate:") {
		rq.deps.Log.Warn("artifacts entry is damaged", "job", j.ID, "error", err.Error())
		return errNotAZip
	}
	return err
}

// quoteEscaper is Workhorse's escape_quotes.go.
var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// encodedSize is what data costs in the Lambda response: base64 when it is
// not UTF-8, else its JSON-escaped length.
func encodedSize(data []byte) int {
	if !utf8.Valid(data) {
		return base64.StdEncoding.EncodedLen(len(data))
	}
	b, _ := json.Marshal(string(data))
	return len(b)
}

// entryType is Workhorse's Content-Type: by the name's extension on the
// by-id route, sniffed from the first 4096 bytes on the by-ref route
// (every text type as text/plain, SVG as itself).
func entryType(name string, data []byte, sniff bool) string {
	if !sniff {
		if t := mime.TypeByExtension(path.Ext(name)); t != "" {
			return t
		}
		return "application/octet-stream"
	}
	head := data[:min(len(data), 4096)]
	t := http.DetectContentType(head)
	if isSVG(head) {
		return "image/svg+xml"
	}
	if strings.HasPrefix(t, "text/") {
		return "text/plain; charset=utf-8"
	}
	return t
}

// isSVG is Workhorse's svg check, in short: an <svg element near the start.
func isSVG(head []byte) bool {
	s := bytes.TrimSpace(head)
	if bytes.HasPrefix(s, []byte("<?xml")) {
		if i := bytes.Index(s, []byte("?>")); i >= 0 {
			s = bytes.TrimSpace(s[i+2:])
		}
	}
	return bytes.HasPrefix(s, []byte("<svg"))
}

// errNoCurrentArtifacts is keep's not_found!(build): Rails renders the
// Ci::Build object itself into the message.
var errNoCurrentArtifacts = notFound("#<Ci::Build>")

// keepJobArtifacts serves POST /projects/:id/jobs/:job_id/artifacts/keep:
// 200 with the job, whose artifacts no longer expire.
func keepJobArtifacts(w http.ResponseWriter, rq *request) error {
	p, j, err := rq.actionTarget(rq.readableProject, rq.projectBuild, rq.caller.CanKeepArtifacts)
	if err != nil {
		return err
	}
	return rq.act(w, http.StatusOK, p, j, jobs.KeepArtifacts(rq.deps.Now()), asJob)
}

// deleteJobArtifacts serves DELETE /projects/:id/jobs/:job_id/artifacts:
// 204, artifacts or not. The job is written first (its artifacts gone, the
// zip marked pending) and the zip deleted after, then the mark cleared: a
// failure in between is a 500 that leaves the mark, and the next DELETE
// (or erase) finishes the removal.
func deleteJobArtifacts(w http.ResponseWriter, rq *request) error {
	maintainerProject := func() (*jobs.Project, error) {
		p, err := rq.readableProject()
		if err == nil && !rq.caller.CanDestroyArtifacts() {
			return nil, errForbidden
		}
		return p, err
	}
	p, j, err := rq.actionTarget(maintainerProject, rq.projectBuild, func(*jobs.Project, *jobs.Job) bool {
		return rq.caller.CanDestroyArtifacts()
	})
	if err != nil {
		return err
	}
	if err := DeleteArtifacts(rq.ctx(), rq.deps, p, j); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// DeleteArtifacts removes a job's artifacts but its log: the job record
// first (the zip marked pending), then the zip, then the mark. The cleanup
// function runs it too.
func DeleteArtifacts(ctx context.Context, d *Deps, p *jobs.Project, j *jobs.Job) error {
	j, err := d.Store.Apply(ctx, p, j, jobs.DeleteArtifacts)
	if err != nil || !j.ArchivePending {
		return err
	}
	if err := d.Files.DeleteArchive(ctx, p.ID, j.ID); err != nil {
		return err
	}
	_, err = d.Store.Apply(ctx, p, j, jobs.ArchiveDeleted)
	return err
}
