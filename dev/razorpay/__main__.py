from dev.razorpay.standin import main

main()
