from synthscope.cli import main

main()
