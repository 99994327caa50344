module github.com/spywatcher/spywatcher/sdk/go

go 1.26
