// Command etcd is etcd's own server entry point, built from a pinned module
// version so the tests run against a known etcd 3.6 release.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
