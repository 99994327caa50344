package cli

import (
	"bytes"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	assdk "github.com/spywatcher/spywatcher/sdk/assemblyscript"
	csdk "github.com/spywatcher/spywatcher/sdk/c"
)

// templates are the plugin scaffolds, one directory per language. Files
// ending in .tmpl are text/template with [[ ]] delimiters; "gitignore"
// becomes ".gitignore".
//
//go:embed all:templates
var templates embed.FS

const pluginNewUsage = `Usage: spywatcher plugin new --lang go|assemblyscript|c NAME [flags]

Creates a plugin in DIR (default ./NAME) that builds and passes its test out
of the box: "make" builds plugin.wasm, "make test" runs it in a local host
against testdata/events.jsonl (spywatcher plugin test) and, for Go, its unit
test too.

Flags:
`

var pluginName = regexp.MustCompile(`^[a-z][a-z0-9-]{1,62}$`)

func pluginNewCmd(args []string, env Env) error {
	fs := flag.NewFlagSet("plugin new", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	var lang, dir, module, sdkDir string
	fs.StringVar(&lang, "lang", "go", "go, assemblyscript or c")
	fs.StringVar(&dir, "dir", "", "where to create the plugin (default ./NAME)")
	fs.StringVar(&module, "module", "", "Go module path (default example.com/NAME)")
	fs.StringVar(&sdkDir, "sdk", "", "Go: a local Spywatcher checkout's sdk/go to build against (default: found from the working directory)")
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, pluginNewUsage)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &exitError{code: 2, err: err}
	}
	var name string
	if len(pos) > 0 {
		name = pos[0]
	}
	usage := func(format string, a ...any) error {
		return &exitError{code: 2, err: fmt.Errorf(format+" (see spywatcher plugin new --help)", a...)}
	}
	if !pluginName.MatchString(name) {
		return usage("name the plugin: 2–63 characters of a-z, 0-9 and -, starting with a letter")
	}
	if lang == "as" {
		lang = "assemblyscript"
	}
	if lang != "go" && lang != "assemblyscript" && lang != "c" {
		return usage("--lang must be go, assemblyscript or c")
	}
	if dir == "" {
		dir = name
	}
	if module == "" {
		module = "example.com/" + name
	}
	if lang == "go" && sdkDir == "" {
		sdkDir = findSDK()
	}
	if sdkDir != "" {
		abs, err := filepath.Abs(sdkDir)
		if err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(abs, "go.mod")); err != nil {
			return usage("--sdk %s has no go.mod: point it at sdk/go of a Spywatcher checkout", sdkDir)
		}
		sdkDir = abs
	}
	files, err := scaffold(lang, scaffoldData{Name: name, Title: title(name), Module: module, SDKDir: filepath.ToSlash(sdkDir)})
	if err != nil {
		return err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("plugin new: %s exists and is not empty", dir)}
	}
	for path, content := range files {
		dst := filepath.Join(dir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, content, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.Stdout, "created %s plugin %s in %s\n\n  cd %s\n  make        # build plugin.wasm\n  make test   # run it against testdata/events.jsonl\n", lang, name, dir, dir)
	if lang == "go" && sdkDir == "" {
		fmt.Fprintln(env.Stdout, "\nThe Go SDK was not found from here: add a replace directive for github.com/spywatcher/spywatcher/sdk/go to go.mod, or run again with --sdk.")
	}
	return nil
}

type scaffoldData struct {
	Name, Title, Module, SDKDir string
}

func title(name string) string {
	words := strings.Split(name, "-")
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// scaffold renders the templates of lang into file contents by path.
func scaffold(lang string, d scaffoldData) (map[string][]byte, error) {
	root := "templates/" + lang
	out := map[string][]byte{}
	err := fs.WalkDir(templates, root, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := templates.ReadFile(path)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(path, root+"/")
		if strings.HasSuffix(rel, ".tmpl") {
			rel = strings.TrimSuffix(rel, ".tmpl")
			t, err := template.New(rel).Delims("[[", "]]").Parse(string(b))
			if err != nil {
				return fmt.Errorf("plugin new: template %s: %w", path, err)
			}
			var buf bytes.Buffer
			if err := t.Execute(&buf, d); err != nil {
				return fmt.Errorf("plugin new: template %s: %w", path, err)
			}
			b = buf.Bytes()
		}
		if base := filepath.Base(rel); base == "gitignore" {
			rel = strings.TrimSuffix(rel, base) + ".gitignore"
		}
		out[rel] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch lang {
	case "c":
		out["spywatcher.h"] = csdk.Header
	case "assemblyscript":
		out["assembly/spywatcher.ts"] = assdk.Helpers
	}
	return out, nil
}

// parseInterspersed parses flags placed before, between or after the
// positional arguments, which it returns.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// findSDK looks for a Spywatcher checkout's sdk/go from the working
// directory upwards.
func findSDK() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		gomod := filepath.Join(d, "sdk", "go", "go.mod")
		if b, err := os.ReadFile(gomod); err == nil && bytes.HasPrefix(b, []byte("module github.com/spywatcher/spywatcher/sdk/go\n")) {
			return filepath.Dir(gomod)
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}
