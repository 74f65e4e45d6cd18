// The analysis layer: snapshots in, aggregations and findings out (issue: findings).
import IPVSModel
