module github.com/segmesh/segmesh

go 1.26
