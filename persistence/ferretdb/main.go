// Command mercury-ferretdb is the MongoDB-protocol server of Mercury's development machines and CI: FerretDB
// v1.24.2 with its PostgreSQL handler, keeping everything in a database of the project's own PostgreSQL.
//
// It embeds FerretDB (package github.com/FerretDB/FerretDB/ferretdb) rather than installing FerretDB's own
// command: `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` builds, but that binary panics at start
// because the published module lacks the generated build/version/version.txt its command requires. The embeddable
// package does not need the file, and this module's go.sum pins every dependency of the build.
//
// persistence/mongo_server.py builds it (python -m persistence.mongo_server --build-only) into
// var/bin/mercury-ferretdb; bin/mongo-local (the Procfile) and tests.harness.MongoServer run it:
//
//	mercury-ferretdb -listen 127.0.0.1:27018 -postgresql-url postgresql://mercury@127.0.0.1:6543/ferretdb
//
// It prints "FerretDB listening on <host:port>" once the port is bound, and stops cleanly on SIGINT or SIGTERM:
// the listener, the client connections and then the PostgreSQL pool are closed.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// poolMaxConns is the most PostgreSQL connections FerretDB's pool opens (FerretDB's own default, made explicit
// here because Mercury depends on it). FerretDB v1.24.2's `update` command keeps one pooled connection per
// statement that matched a document until the whole command ends, so a bulk_write of ReplaceOne/UpdateOne that
// matches this many documents waits forever for a connection it holds itself, and the server stays wedged. See
// SAFE_BULK_WRITE in persistence/mongo_server.py for the measured limits and the batch size Mercury uses.
const poolMaxConns = "50"

func main() {
	listen := flag.String("listen", "127.0.0.1:27018", "TCP address of the MongoDB-protocol listener")
	postgresqlURL := flag.String("postgresql-url", "", "URL of the PostgreSQL database that holds the data, "+
		"e.g. postgresql://mercury@127.0.0.1:6543/ferretdb (the database must exist)")
	// FerretDB logs every failed command (even the endSessions each pymongo client sends when it closes, which
	// FerretDB does not implement) at warn level, with the whole message: error keeps the Procfile's output quiet.
	logLevel := flag.String("log-level", "error", "FerretDB's log level: debug, info, warn or error")
	flag.Parse()

	if *postgresqlURL == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: mercury-ferretdb [-listen host:port] -postgresql-url postgresql://... [-log-level level]")
		os.Exit(2)
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "mercury-ferretdb: -log-level: %s\n", err)
		os.Exit(2)
	}

	pgURL, err := withPoolSettings(*postgresqlURL)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mercury-ferretdb: -postgresql-url: %s\n", err)
		os.Exit(2)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// Canceled by the first SIGINT (Ctrl-C) or SIGTERM (honcho, the tests); Run then closes everything and returns.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listen},
		Logger:        logger,
		Handler:       "postgresql",
		PostgreSQLURL: pgURL,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "mercury-ferretdb: %s\n", err)
		os.Exit(1)
	}

	// New has bound the port already (a client connecting from now on waits in the backlog until Run accepts
	// it), so this is when to tell whoever waits for us; MongoDBURI has the bound address (the kernel's choice
	// with port 0). FerretDB connects to PostgreSQL on the first command, not here.
	addr := strings.TrimSuffix(strings.TrimPrefix(f.MongoDBURI(), "mongodb://"), "/")
	fmt.Printf("FerretDB listening on %s\n", addr)

	if err := f.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "mercury-ferretdb: %s\n", err)
		os.Exit(1)
	}
	fmt.Println("FerretDB stopped")
}

// withPoolSettings adds Mercury's settings of FerretDB's pgx pool to a PostgreSQL URL (pgxpool reads them from
// its query; any the URL already has are kept):
//   - pool_max_conns: see poolMaxConns.
//   - pool_max_conn_idle_time: FerretDB v1.24.2 means to default it to 1m but tests the condition the wrong way
//     round (it sets 1m only when the URL has the parameter), so pgx's 30 minutes apply and a FerretDB keeps up to
//     50 idle connections of a PostgreSQL whose max_connections is 100 by default; given here, idle connections
//     close after about a minute.
func withPoolSettings(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("%q is not a postgres:// or postgresql:// URL", raw)
	}
	values := u.Query()
	if !values.Has("pool_max_conns") {
		values.Set("pool_max_conns", poolMaxConns)
	}
	if !values.Has("pool_max_conn_idle_time") {
		values.Set("pool_max_conn_idle_time", "1m")
	}
	u.RawQuery = values.Encode()
	return u.String(), nil
}
