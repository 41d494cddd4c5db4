// oci-build assembles the dcp-operator image from staged root filesystem directories, byte for byte
// reproducibly: every layer is a tar written in sorted order with fixed times and owners, the config
// carries no build time or host, and the result is written as an OCI layout and a `docker load` tarball
// with go-containerregistry. Called by hack/image/build.sh (make image).
//
// Usage: oci-build -layout DIR -tar FILE -tag REF -user UID:GID -entrypoint a,b -env K=V,... -owned PATH,... LAYERDIR...
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is every file's and the image's time: the build must not depend on when it ran.
var epoch = time.Unix(0, 0).UTC()

func main() {
	layoutDir := flag.String("layout", "", "OCI image layout directory to write")
	tarPath := flag.String("tar", "", "docker load tarball to write")
	tag := flag.String("tag", "", "image reference, e.g. dcp-operator:0.1.0")
	user := flag.String("user", "65532:65532", "UID:GID the entrypoint runs as")
	entrypoint := flag.String("entrypoint", "", "comma-separated entrypoint")
	env := flag.String("env", "", "comma-separated K=V environment")
	owned := flag.String("owned", "", "comma-separated absolute paths owned by -user (writable directories)")
	workdir := flag.String("workdir", "/", "working directory")
	flag.Parse()
	if *layoutDir == "" || *tarPath == "" || *tag == "" || *entrypoint == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "oci-build: need -layout, -tar, -tag, -entrypoint and at least one layer directory")
		os.Exit(2)
	}
	if err := build(*layoutDir, *tarPath, *tag, *user, split(*entrypoint), split(*env), split(*owned), *workdir, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "oci-build:", err)
		os.Exit(1)
	}
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func build(layoutDir, tarPath, tag, user string, entrypoint, env, owned []string, workdir string, layerDirs []string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	var uid, gid int
	if _, err := fmt.Sscanf(user, "%d:%d", &uid, &gid); err != nil {
		return fmt.Errorf("-user %q: want UID:GID", user)
	}
	ownedSet := map[string]bool{}
	for _, p := range owned {
		ownedSet[strings.TrimPrefix(p, "/")] = true
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	history := []v1.History{}
	for _, dir := range layerDirs {
		data, err := tarDir(dir, ownedSet, uid, gid)
		if err != nil {
			return fmt.Errorf("layer %s: %w", dir, err)
		}
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
			tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return err
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			return err
		}
		history = append(history, v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "oci-build " + filepath.Base(dir)})
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.History = history
	cf.Config = v1.Config{User: user, Entrypoint: entrypoint, Env: env, WorkingDir: workdir,
		Labels: map[string]string{"org.opencontainers.image.title": "dcp-operator", "org.opencontainers.image.source": "https://github.com/dcp-operator/dcp-operator"}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	if err := os.RemoveAll(layoutDir); err != nil {
		return err
	}
	p, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref.Name()})); err != nil {
		return err
	}
	if err := tarball.WriteToFile(tarPath, ref, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Println(digest.String())
	return nil
}

// tarDir writes dir as a tar: entries sorted by path, times at epoch, owned by root except the
// -owned paths, modes reduced to what matters (exec bits, sticky /tmp), no user or group names.
func tarDir(dir string, owned map[string]bool, uid, gid int) ([]byte, error) {
	var paths []string
	if err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir {
			paths = append(paths, path)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, path := range paths {
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		info, err := os.Lstat(path)
		if err != nil {
			return nil, err
		}
		h := &tar.Header{Name: rel, ModTime: epoch, Format: tar.FormatPAX}
		if owned[rel] {
			h.Uid, h.Gid = uid, gid
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return nil, err
			}
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, target, 0o777
		case info.IsDir():
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, rel+"/", 0o755
			if info.Mode()&fs.ModeSticky != 0 {
				h.Mode = 0o1777
			}
		case info.Mode().IsRegular():
			h.Typeflag, h.Size, h.Mode = tar.TypeReg, info.Size(), 0o644
			if info.Mode()&0o111 != 0 {
				h.Mode = 0o755
			}
		default:
			return nil, fmt.Errorf("%s: unsupported file type %s", rel, info.Mode().Type())
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
