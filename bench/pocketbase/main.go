// PocketBase as the peer of Docket's `tasks` benchmark (bench/benches/tasks.py).
//
// A stock PocketBase (pinned in go.mod) plus, on start, a `tasks` collection with the
// fields of Docket's task, the indexes its filtered lists need and API rules that let a
// user see and create only their own tasks. Everything else is PocketBase's default,
// except two settings the bench needs, both said here and in bench/README.md:
//
//   - PB_BENCH_SYNCHRONOUS=FULL|NORMAL (environment, default NORMAL = PocketBase's own
//     DefaultDBConnect): the SQLite synchronous pragma of the data database. NORMAL in WAL
//     mode does not fsync a commit (it is durable at the next checkpoint); FULL fsyncs the
//     WAL on every commit, which is the durability Docket gives every create. All other
//     pragmas are PocketBase's own, copied from core.DefaultDBConnect of this version.
//   - the batch API (/api/batch) is enabled, up to 1000 requests per batch, so the bench can
//     load 1M tasks through the REST API in bounded time. Single creates do not use it.
//
// Run: pocketbase-bench serve --http 127.0.0.1:PORT --dir DIR
// Built by the bench into bench/work/ with GOFLAGS=-mod=mod; loopback only.
package main

import (
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	// The same SQLite driver PocketBase registers in its default build.
	_ "modernc.org/sqlite"
)

// ownerRule lets a user list, view, update and delete only their own tasks (Docket answers
// 404 for another user's task; PocketBase's rules give the same outcome).
const ownerRule = "@request.auth.id != '' && owner = @request.auth.id"

// createRule: a user may create tasks only for themselves (Docket sets the owner from the
// token; PocketBase needs it in the body and checks it here).
const createRule = "@request.auth.id != '' && @request.body.owner = @request.auth.id"

// pragmas returns PocketBase's default connection pragmas with the synchronous level asked
// for. The order matters (busy_timeout first), as PocketBase's own comment explains.
func pragmas(synchronous string) string {
	return "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=journal_size_limit(200000000)&_pragma=synchronous(" + synchronous + ")" +
		"&_pragma=foreign_keys(ON)&_pragma=temp_store(MEMORY)&_pragma=cache_size(-32000)"
}

// synchronousLevel reads PB_BENCH_SYNCHRONOUS; anything but FULL or NORMAL is fatal so a typo
// cannot silently measure the wrong durability.
func synchronousLevel() string {
	level := strings.ToUpper(strings.TrimSpace(os.Getenv("PB_BENCH_SYNCHRONOUS")))
	if level == "" {
		return "NORMAL"
	}
	if level != "FULL" && level != "NORMAL" {
		log.Fatalf("PB_BENCH_SYNCHRONOUS must be FULL or NORMAL, not %q", level)
	}
	return level
}

func main() {
	level := synchronousLevel()
	app := pocketbase.NewWithConfig(pocketbase.Config{
		HideStartBanner: false,
		DBConnect: func(dbPath string) (*dbx.DB, error) {
			// Both data.db and auxiliary.db (request logs) get the same level.
			return dbx.Open("sqlite", dbPath+pragmas(level))
		},
	})
	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		if err := ensureTasks(e.App); err != nil {
			return fmt.Errorf("bench setup: %w", err)
		}
		if err := enableBatch(e.App); err != nil {
			return fmt.Errorf("bench setup: %w", err)
		}
		log.Printf("bench: tasks collection ready, sqlite synchronous=%s", level)
		return e.Next()
	})
	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}

// enableBatch turns on /api/batch (off by default) for the bench's bulk loading.
func enableBatch(app core.App) error {
	settings := app.Settings()
	if settings.Batch.Enabled && settings.Batch.MaxRequests >= 1000 {
		return nil
	}
	settings.Batch.Enabled = true
	settings.Batch.MaxRequests = 1000
	settings.Batch.Timeout = 60
	settings.Batch.MaxBodySize = 64 << 20
	return app.Save(settings)
}

// ensureTasks creates the tasks collection once (a fresh data dir per run makes that every
// start). Fields follow Docket's task (API.md); created/updated are PocketBase autodates.
func ensureTasks(app core.App) error {
	if _, err := app.FindCollectionByNameOrId("tasks"); err == nil {
		return nil
	}
	users, err := app.FindCollectionByNameOrId("users")
	if err != nil {
		return err
	}
	c := core.NewBaseCollection("tasks")
	c.ListRule = types.Pointer(ownerRule)
	c.ViewRule = types.Pointer(ownerRule)
	c.UpdateRule = types.Pointer(ownerRule)
	c.DeleteRule = types.Pointer(ownerRule)
	c.CreateRule = types.Pointer(createRule)
	c.Fields.Add(
		&core.TextField{Name: "title", Required: true, Max: 500},
		&core.TextField{Name: "description", Max: 100000},
		&core.BoolField{Name: "completed"},
		&core.DateField{Name: "completed_at"},
		&core.SelectField{Name: "priority", MaxSelect: 1, Values: []string{"low", "medium", "high", "urgent"}},
		&core.JSONField{Name: "tags", MaxSize: 65536},
		&core.DateField{Name: "due"},
		&core.TextField{Name: "timezone", Max: 64},
		&core.JSONField{Name: "recurrence", MaxSize: 4096},
		&core.JSONField{Name: "reminders", MaxSize: 16384},
		&core.TextField{Name: "parent_id", Max: 64},
		&core.RelationField{Name: "owner", Required: true, CollectionId: users.Id, MaxSelect: 1, CascadeDelete: true},
		&core.NumberField{Name: "version", OnlyInt: true},
		&core.AutodateField{Name: "created", OnCreate: true},
		&core.AutodateField{Name: "updated", OnCreate: true, OnUpdate: true},
	)
	// One index per list shape the bench asks for, each led by owner like Docket's
	// projection: open tasks by due (default list, overdue), by priority (sort=-priority),
	// priority filter by due (tag+priority filter), and creation order.
	c.AddIndex("idx_tasks_owner_completed_due", false, "`owner`, `completed`, `due`", "")
	c.AddIndex("idx_tasks_owner_completed_priority", false, "`owner`, `completed`, `priority`", "")
	c.AddIndex("idx_tasks_owner_priority_due", false, "`owner`, `priority`, `due`", "")
	c.AddIndex("idx_tasks_owner_created", false, "`owner`, `created`", "")
	return app.Save(c)
}
