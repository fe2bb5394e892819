package api

import (
	"archive/zip"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/files"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/paginate"
)

var (
	errTreeArtifactsNotFound = notFound("Artifacts")
	errTreeMetadataNotFound  = notFound("Artifacts metadata")
	errTreePathNotFound      = notFound("Path")
)

// treeEntry is one row of GET …/artifacts/tree.
type treeEntry struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Type string `json:"type"`
	Size *int64 `json:"size,omitempty"`
	Mode string `json:"mode"`
}

// getJobArtifactsTree serves GET /projects/:id/jobs/:job_id/artifacts/tree
// (GitLab 18.8): the archive's directory listing. GitLab reads it from the
// archive's metadata.gz; we read the zip's central directory, with the
// same ranged GETs as a single file (no entry data).
func getJobArtifactsTree(w http.ResponseWriter, rq *request) error {
	q := rq.URL.Query()
	pg, err := paginate.Parse(q)
	if err != nil {
		return err
	}
	recursive, err := queryBool(q, "recursive")
	if err != nil {
		return err
	}
	dir := strings.Trim(q.Get("path"), "/")
	p, j, err := rq.artifactsBuild()
	if err != nil {
		return err
	}
	if !j.ArtifactsAvailable(rq.deps.Now()) {
		return errTreeArtifactsNotFound
	}
	if j.Archive == nil {
		return errTreeMetadataNotFound
	}
	ra, err := rq.deps.Files.OpenArchive(rq.ctx(), p.ID, j.ID)
	if errors.Is(err, files.ErrNoObject) {
		return errTreeMetadataNotFound
	}
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(ra, ra.Size())
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return errTreeMetadataNotFound
	}
	rows, ok := artifactsTree(zr.File, dir, recursive)
	if !ok {
		return errTreePathNotFound
	}
	from := min(pg.Offset(), len(rows))
	to := min(from+pg.PerPage, len(rows))
	paginate.OffsetHeaders(w.Header(), rq.pageLink(map[string]string{"job_id": strconv.FormatInt(j.ID, 10)}), pg, to < len(rows), int64(len(rows)))
	writeJSON(w, http.StatusOK, rows[from:to])
	return nil
}

// artifactsTree lists dir ("" for the root) of an archive: its immediate
// subdirectories, then its files, or with recursive every descendant in
// path order. Directories the zip only implies (a file's parents) count;
// ok is false when dir is none of the archive's directories.
func artifactsTree(files []*zip.File, dir string, recursive bool) (rows []treeEntry, ok bool) {
	type node struct {
		size  int64
		mode  fs.FileMode
		isDir bool
	}
	nodes := map[string]node{"": {isDir: true, mode: fs.ModeDir | 0o755}}
	for _, f := range files {
		name := strings.TrimSuffix(f.Name, "/")
		if name == "" || strings.HasPrefix(name, "/") {
			continue
		}
		isDir := strings.HasSuffix(f.Name, "/")
		nodes[name] = node{size: int64(f.UncompressedSize64), mode: f.Mode(), isDir: isDir}
		for parent := path.Dir(name); parent != "."; parent = path.Dir(parent) {
			if _, seen := nodes[parent]; !seen {
				nodes[parent] = node{isDir: true, mode: fs.ModeDir | 0o755}
			}
		}
	}
	if n, found := nodes[dir]; !found || !n.isDir {
		return nil, false
	}
	prefix := dir + "/"
	if dir == "" {
		prefix = ""
	}
	var dirs, plain []treeEntry
	for name, n := range nodes {
		rest, under := strings.CutPrefix(name, prefix)
		if !under || name == dir || (!recursive && strings.Contains(rest, "/")) {
			continue
		}
		e := treeEntry{Name: path.Base(name), Path: name, Type: "file", Mode: unixMode(n.mode, n.isDir)}
		if n.isDir {
			e.Type, e.Path = "directory", name+"/"
			dirs = append(dirs, e)
			continue
		}
		size := n.size
		e.Size = &size
		plain = append(plain, e)
	}
	byPath := func(es []treeEntry) {
		sort.Slice(es, func(i, k int) bool { return es[i].Path < es[k].Path })
	}
	if recursive {
		all := append(dirs, plain...)
		byPath(all)
		return all, true
	}
	byPath(dirs)
	byPath(plain)
	return append(append([]treeEntry{}, dirs...), plain...), true
}

// unixMode is the octal mode GitLab shows ("100644", "040755").
func unixMode(m fs.FileMode, isDir bool) string {
	kind := uint32(0o100000)
	if isDir {
		kind = 0o040000
	}
	return fmt.Sprintf("%06o", kind|uint32(m.Perm()))
}
