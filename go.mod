module github.com/twinlog/twinlog

go 1.26.8
