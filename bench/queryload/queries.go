package queryload

import (
	"fmt"

	"github.com/twinlog/twinlog/bench/stdgraph"
)

// Query is one kind of query of the workload, in the query language and
// in SQL over the PostgreSQL baseline's tables, with its arguments chosen
// by a run index so that consecutive runs touch different twins.
type Query struct {
	// Name is the kind's short name (lookup, rooms-above-75, ...).
	Name string
	// Text returns the query language text of run i.
	Text func(i int) string
	// SQL is the PostgreSQL equivalent; Args returns its arguments for run i.
	SQL  string
	Args func(i int) []any
	// Rows is how many rows (or, for SQL, result rows) a run returns.
	Rows int
}

// Thresholds of the room temperature scans. The standard graph's rooms
// are 18–26 (°C), so the "warmer than 75" (°F) matches none and
// measures the scan alone; 25 matches about one room in eight.
const (
	WarmThreshold      = 75
	SelectiveThreshold = 25
)

// Queries returns the workload's query kinds over the graph cfg:
// a $dtId lookup of a room, the room temperature scan (COUNT) at both
// thresholds, a one-hop JOIN from a floor to its rooms, and a three-hop
// MATCH from a building to its sensors.
func Queries(cfg stdgraph.Config) []Query {
	b, f, r, s := dims(cfg)
	room := func(i int) string {
		i = spread(i)
		return fmt.Sprintf("building-%d-floor-%d-room-%d", i%b, (i/b)%f, (i/(b*f))%r)
	}
	floor := func(i int) string {
		i = spread(i)
		return fmt.Sprintf("building-%d-floor-%d", i%b, (i/b)%f)
	}
	building := func(i int) string { return fmt.Sprintf("building-%d", spread(i)%b) }
	scan := func(th int) Query {
		return Query{
			Name: fmt.Sprintf("rooms-above-%d", th),
			Text: func(int) string {
				return fmt.Sprintf("SELECT COUNT() FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, '%s') AND T.temperature > %d", stdgraph.RoomModel, th)
			},
			SQL:  `SELECT count(*) FROM queryload_twins WHERE model = $1 AND (doc->>'temperature')::float8 > $2`,
			Args: func(int) []any { return []any{stdgraph.RoomModel, float64(th)} },
			Rows: 1,
		}
	}
	return []Query{
		{
			Name: "lookup",
			Text: func(i int) string { return "SELECT * FROM DIGITALTWINS T WHERE T.$dtId = '" + room(i) + "'" },
			SQL:  `SELECT doc FROM queryload_twins WHERE id = $1`,
			Args: func(i int) []any { return []any{room(i)} },
			Rows: 1,
		},
		scan(WarmThreshold),
		scan(SelectiveThreshold),
		{
			Name: "join",
			Text: func(i int) string {
				return "SELECT R FROM DIGITALTWINS F JOIN R RELATED F.contains WHERE F.$dtId = '" + floor(i) + "'"
			},
			SQL:  `SELECT t.doc FROM queryload_rels r JOIN queryload_twins t ON t.id = r.tgt WHERE r.src = $1 AND r.name = 'contains'`,
			Args: func(i int) []any { return []any{floor(i)} },
			Rows: r,
		},
		{
			Name: "match",
			Text: func(i int) string {
				return "SELECT S.$dtId FROM DIGITALTWINS MATCH (B)-[:contains]->(F)-[:contains]->(R)-[:hasSensor]->(S) WHERE B.$dtId = '" + building(i) + "'"
			},
			// The pattern's three hops as a recursive CTE, each depth
			// following its own relationship name.
			SQL: `WITH RECURSIVE walk(id, depth) AS (
				SELECT $1::text, 0
				UNION ALL
				SELECT r.tgt, w.depth + 1 FROM walk w JOIN queryload_rels r ON r.src = w.id
				WHERE w.depth < 3 AND r.name = (CASE WHEN w.depth < 2 THEN 'contains' ELSE 'hasSensor' END))
				SELECT id FROM walk WHERE depth = 3`,
			Args: func(i int) []any { return []any{building(i)} },
			Rows: f * r * s,
		},
	}
}

func dims(cfg stdgraph.Config) (b, f, r, s int) {
	b, f, r, s = cfg.Buildings, cfg.Floors, cfg.Rooms, cfg.Sensors
	if b == 0 {
		b = 1000
	}
	if f == 0 {
		f = 10
	}
	if r == 0 {
		r = 20
	}
	if s == 0 {
		s = 4
	}
	return b, f, r, s
}

// spread scatters consecutive run indexes over the graph.
func spread(i int) int { return int(uint32(i) * 2654435761 >> 1) }
