// Package agreement checks that the deployment description and the code
// agree: template.yaml's functions, routes (one per namespace depth) and
// least-privilege policies; the functions/ folders and their declared
// permissions; the events/ fixtures; and the api.Functions registry.
package agreement

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// PermissionsFile is the file, in each function's folder, that lists the
// DynamoDB and S3 actions its code calls: one "action resource" per line,
// resources in the template's terms ("table", "table/index/*",
// "bucket/projects/*"); # starts a comment. template.yaml must grant
// exactly these, and the emulator test checks that the code calls nothing
// else.
const PermissionsFile = "permissions"

// Permission is one action allowed on one resource (a pattern with * and ?
// as in IAM) or, when observed, called on one concrete resource.
type Permission struct {
	Action   string
	Resource string
}

func (p Permission) String() string { return p.Action + " " + p.Resource }

// Declared reads a function's permissions file.
func Declared(functionsDir, folder string) ([]Permission, error) {
	path := filepath.Join(functionsDir, folder, PermissionsFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Permission
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		switch len(fields) {
		case 0:
			continue
		case 2:
			out = append(out, Permission{fields[0], fields[1]})
		default:
			return nil, fmt.Errorf("%s:%d: want \"action resource\", got %q", path, n, sc.Text())
		}
	}
	return out, sc.Err()
}

// Unobserved lists the declarations of a function's permissions file that
// no local call can show, each with its reason: a line whose comment reads
// "# unobserved: <reason>" (a grant a presigned URL uses, which S3 checks
// and the code never calls; a branch only data the demo world lacks
// reaches, which a named test covers). The emulator test asks every other
// declaration to be exercised by an event.
func Unobserved(functionsDir, folder string) (map[Permission]string, error) {
	b, err := os.ReadFile(filepath.Join(functionsDir, folder, PermissionsFile))
	if err != nil {
		return nil, err
	}
	out := map[Permission]string{}
	for _, l := range strings.Split(string(b), "\n") {
		line, comment, _ := strings.Cut(l, "#")
		fields := strings.Fields(line)
		if why, ok := strings.CutPrefix(strings.TrimSpace(comment), "unobserved:"); ok && len(fields) == 2 {
			out[Permission{fields[0], fields[1]}] = strings.TrimSpace(why)
		}
	}
	return out, nil
}

// Allows reports whether one of the granted patterns covers p.
func Allows(granted []Permission, p Permission) bool {
	for _, g := range granted {
		if wildcard(g.Action).MatchString(p.Action) && wildcard(g.Resource).MatchString(p.Resource) {
			return true
		}
	}
	return false
}

// wildcard compiles an IAM pattern: * is any run of characters, ? one.
func wildcard(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// diff returns what a has and b lacks, sorted.
func diff(a, b []Permission) []Permission {
	in := map[Permission]bool{}
	for _, p := range b {
		in[p] = true
	}
	var out []Permission
	for _, p := range a {
		if !in[p] {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}
